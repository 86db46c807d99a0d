DROP INDEX `tasks_received_idx`;--> statement-breakpoint
-- Written by hand from here: each row's rowid becomes its seq (task-store.ts writes
-- new rows so), and the history lists newest first by rowid instead of through the
-- dropped index. Rows are numbered 1..N in their seq order, and seq takes the same
-- number: the order is kept even if an older relay ever wrote a seq twice. First
-- every rowid moves above the largest, so that no row takes a rowid another holds.
UPDATE `tasks` SET rowid = rowid + (SELECT MAX(rowid) FROM `tasks`);--> statement-breakpoint
CREATE TEMP TABLE `task_ranks` (`id` integer PRIMARY KEY, `r` integer NOT NULL);--> statement-breakpoint
INSERT INTO `task_ranks` SELECT rowid, ROW_NUMBER() OVER (ORDER BY `seq`, rowid) FROM `tasks`;--> statement-breakpoint
UPDATE `tasks` SET rowid = (SELECT `r` FROM `task_ranks` WHERE `id` = `tasks`.rowid),
  `seq` = (SELECT `r` FROM `task_ranks` WHERE `id` = `tasks`.rowid);--> statement-breakpoint
DROP TABLE `task_ranks`;
