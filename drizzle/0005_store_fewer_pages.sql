PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_outbox` (
	`id` integer PRIMARY KEY NOT NULL,
	`frame` text NOT NULL,
	`bytes` integer NOT NULL,
	`critical` integer NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_outbox`("id", "frame", "bytes", "critical") SELECT "id", "frame", "bytes", "critical" FROM `outbox`;--> statement-breakpoint
DROP TABLE `outbox`;--> statement-breakpoint
ALTER TABLE `__new_outbox` RENAME TO `outbox`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `outbox_droppable_id_idx` ON `outbox` (`id`) WHERE "outbox"."critical" = 0;--> statement-breakpoint
DROP INDEX `tasks_completed_idx`;--> statement-breakpoint
CREATE INDEX `tasks_completed_idx` ON `tasks` (`completed_at`,`seq`) WHERE "tasks"."completed_at" IS NOT NULL;--> statement-breakpoint
-- Written by hand (drizzle cannot say WITHOUT ROWID, schema.ts): the timeline's small
-- rows live in their key's b-tree, one page written per event instead of two.
CREATE TABLE `__new_task_events` (
	`task_id` text NOT NULL,
	`n` integer NOT NULL,
	`at` integer NOT NULL,
	`kind` text NOT NULL,
	`machine_id` text,
	`detail` text,
	`upstream` text,
	`output_frames` integer NOT NULL,
	`output_bytes` integer NOT NULL,
	PRIMARY KEY(`task_id`, `n`),
	FOREIGN KEY (`task_id`) REFERENCES `tasks`(`task_id`) ON UPDATE no action ON DELETE cascade
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_task_events` SELECT `task_id`, `n`, `at`, `kind`, `machine_id`, `detail`, `upstream`, `output_frames`, `output_bytes` FROM `task_events`;--> statement-breakpoint
DROP TABLE `task_events`;--> statement-breakpoint
ALTER TABLE `__new_task_events` RENAME TO `task_events`;--> statement-breakpoint
-- Written by hand: the total of tasks received is the rows kept plus the rows pruned
-- (task-store.ts), so a new task no longer writes the meta page in its commit.
INSERT INTO `meta` (`key`, `value`)
  SELECT 'tasksPruned', CAST(MAX(0, CAST(`value` AS INTEGER) - (SELECT COUNT(*) FROM `tasks`)) AS TEXT)
  FROM `meta` WHERE `key` = 'totalTasksProcessed';--> statement-breakpoint
DELETE FROM `meta` WHERE `key` = 'totalTasksProcessed';
