PRAGMA foreign_keys=OFF;--> statement-breakpoint
-- Generated, then WITHOUT ROWID added by hand (drizzle cannot say it, schema.ts), as in
-- 0005. The foreign key to tasks goes: its cascade ran once per pruned task, and
-- task-store.ts now deletes a pruned task's events itself, in one statement.
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
	PRIMARY KEY(`task_id`, `n`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_task_events`("task_id", "n", "at", "kind", "machine_id", "detail", "upstream", "output_frames", "output_bytes") SELECT "task_id", "n", "at", "kind", "machine_id", "detail", "upstream", "output_frames", "output_bytes" FROM `task_events`;--> statement-breakpoint
DROP TABLE `task_events`;--> statement-breakpoint
ALTER TABLE `__new_task_events` RENAME TO `task_events`;--> statement-breakpoint
PRAGMA foreign_keys=ON;