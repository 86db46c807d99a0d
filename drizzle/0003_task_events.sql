CREATE TABLE `task_events` (
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
);
