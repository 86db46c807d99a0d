CREATE TABLE `connection_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`event` text NOT NULL,
	`timestamp` integer NOT NULL,
	`details` text
);
--> statement-breakpoint
CREATE TABLE `held_commands` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`task_id` text NOT NULL,
	`frame` text NOT NULL,
	FOREIGN KEY (`task_id`) REFERENCES `tasks`(`task_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `held_commands_task_idx` ON `held_commands` (`task_id`,`id`);--> statement-breakpoint
CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `outbox` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`frame` text NOT NULL,
	`bytes` integer NOT NULL,
	`critical` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `outbox_critical_id_idx` ON `outbox` (`critical`,`id`);--> statement-breakpoint
CREATE TABLE `tasks` (
	`task_id` text PRIMARY KEY NOT NULL,
	`task_name` text NOT NULL,
	`status` text NOT NULL,
	`spawn_frame` text NOT NULL,
	`dispatched_to` text,
	`machine_id` text,
	`received_at` integer NOT NULL,
	`dispatched_at` integer,
	`completed_at` integer,
	`error` text,
	`last_reported_status` text,
	`attempts` integer DEFAULT 1 NOT NULL,
	`seq` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tasks_seq_idx` ON `tasks` (`seq`);--> statement-breakpoint
CREATE INDEX `tasks_status_seq_idx` ON `tasks` (`status`,`seq`);--> statement-breakpoint
CREATE INDEX `tasks_received_idx` ON `tasks` (`received_at`,`seq`);--> statement-breakpoint
CREATE INDEX `tasks_completed_idx` ON `tasks` (`completed_at`,`seq`);