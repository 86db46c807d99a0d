CREATE TABLE `machine_bindings` (
	`machine_id` text PRIMARY KEY NOT NULL,
	`key_fingerprint` text NOT NULL,
	`bound_at` integer NOT NULL
);
