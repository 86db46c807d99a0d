ALTER TABLE `connection_log` ADD `security` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `connection_log` ADD `aggregate_key` text;--> statement-breakpoint
CREATE INDEX `connection_log_security_id_idx` ON `connection_log` (`security`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `connection_log_aggregate_key_idx` ON `connection_log` (`aggregate_key`);