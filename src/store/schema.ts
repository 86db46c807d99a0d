/**
 * The relay's SQLite schema. Times are integer milliseconds from the injected
 * clock, stored as plain integers (drizzle's `timestamp` modes would convert to
 * Date and one of them is seconds). Column names are snake_case in SQL.
 *
 * After changing this file run `bun run db:generate` and register the new
 * migration in `migrations.ts`.
 */
import { sql } from "drizzle-orm";
import {
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";
import {
  ENDED_STATUSES,
  type TaskEventKind,
  type TaskStatus,
  type UpstreamDisposition,
} from "../core/ports.ts";

export const tasks = sqliteTable(
  "tasks",
  {
    taskId: text("task_id").primaryKey(),
    taskName: text("task_name").notNull(),
    status: text("status").$type<TaskStatus>().notNull(),
    spawnFrame: text("spawn_frame").notNull(),
    dispatchedTo: text("dispatched_to"),
    machineId: text("machine_id"),
    receivedAt: integer("received_at").notNull(),
    dispatchedAt: integer("dispatched_at"),
    completedAt: integer("completed_at"),
    error: text("error"),
    lastReportedStatus: text("last_reported_status"),
    attempts: integer("attempts").notNull().default(1),
    /**
     * FIFO position: max(seq)+1 on every savePending, so a new attempt goes to the back.
     * Handed out by task-store.ts from a counter it owns (one connection owns the file),
     * so no index of its own: MAX(seq) is read once per status from the (status, seq)
     * index, at open and after a rollback. task-store.ts also makes it the row's rowid
     * (migration 0007 renumbered older rows), so the history's newest-first list walks
     * the table itself backwards and needs no index: a VACUUM may renumber rowids but
     * keeps their order, and a new seq is always above every rowid.
     */
    seq: integer("seq").notNull(),
  },
  // Every index is paid for on each insert of a task (and on every write that changes
  // one of its columns), so each one here serves a query no other can.
  (t) => [
    // loadActive (pending/dispatched in FIFO order); also serves as the status index for
    // countByStatus, the filtered total and a status's newest-first list, and MAX(seq)
    // status by status. The unfiltered list needs none: it walks the rowid (seq).
    index("tasks_status_seq_idx").on(t.status, t.seq),
    // prune(): walks ended tasks from the longest ended (oldest completed_at first).
    // Partial: a task is inserted with completed_at NULL, so its insert skips this
    // index (one page fewer in the commit that records a spawn).
    index("tasks_completed_idx").on(t.completedAt, t.seq).where(sql`${t.completedAt} IS NOT NULL`),
  ],
);

export const heldCommands = sqliteTable(
  "held_commands",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    taskId: text("task_id")
      .notNull()
      .references(() => tasks.taskId, { onDelete: "cascade" }),
    frame: text("frame").notNull(),
  },
  // Without it every cascaded delete from prune() scans the whole table.
  (t) => [index("held_commands_task_idx").on(t.taskId, t.id)],
);

/**
 * Each task's timeline (src/core/task-timeline.ts), at most 64 rows a task.
 * The key serves the reads (a task's events in order, its last one) and the
 * delete of a pruned task's events, so no other index is paid for.
 * The table is WITHOUT ROWID (migration 0005, written by hand: drizzle cannot
 * say it): its small rows live in the key's own b-tree, so an event is one page
 * written, not a table page and an index page.
 */
export const taskEvents = sqliteTable(
  "task_events",
  {
    // No foreign key (migration 0006): a cascade runs once per pruned task, about
    // 3 µs a row; task-store.ts deletes a pruned task's events in one statement.
    taskId: text("task_id").notNull(),
    n: integer("n").notNull(),
    at: integer("at").notNull(),
    kind: text("kind").$type<TaskEventKind>().notNull(),
    machineId: text("machine_id"),
    detail: text("detail"),
    upstream: text("upstream").$type<UpstreamDisposition>(),
    outputFrames: integer("output_frames").notNull(),
    outputBytes: integer("output_bytes").notNull(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.n] })],
);

export const outbox = sqliteTable(
  "outbox",
  {
    /**
     * Given by outbox-store.ts from a counter it owns, never reused within a run
     * (a drain cursor in memory points past deleted rows). Not AUTOINCREMENT: that
     * writes the sqlite_sequence page in every commit that appends.
     */
    id: integer("id").primaryKey(),
    frame: text("frame").notNull(),
    /** UTF-8 length of `frame`, so stats and the drop policy never re-measure text. */
    bytes: integer("bytes").notNull(),
    /** Stored as 0/1; critical frames (task results) are never dropped under pressure. */
    critical: integer("critical", { mode: "boolean" }).notNull(),
  },
  // The drop policy's walk over the oldest droppable rows. Partial: task results
  // (critical) are never dropped, so their appends skip it.
  (t) => [index("outbox_droppable_id_idx").on(t.id).where(sql`${t.critical} = 0`)],
);

export const connectionLog = sqliteTable(
  "connection_log",
  {
    // AUTOINCREMENT never reuses ids: a newer row always has a larger id.
    id: integer("id").primaryKey({ autoIncrement: true }),
    event: text("event").notNull(),
    timestamp: integer("timestamp").notNull(),
    details: text("details"),
    /** 1: a security event, kept apart from the others (its own retention); 0: any other. */
    security: integer("security").notNull().default(0),
    /** Set on a row that a repeat of its event replaces (one row with a count); else null. */
    aggregateKey: text("aggregate_key"),
  },
  (t) => [
    // Retention and listing walk each kind from its newest row.
    index("connection_log_security_id_idx").on(t.security, t.id),
    uniqueIndex("connection_log_aggregate_key_idx").on(t.aggregateKey),
  ],
);

export const meta = sqliteTable("meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/** Which key each machineId belongs to: an HMAC fingerprint of it (key-check.ts), never the key. */
export const machineBindings = sqliteTable("machine_bindings", {
  machineId: text("machine_id").primaryKey(),
  keyFingerprint: text("key_fingerprint").notNull(),
  boundAt: integer("bound_at").notNull(),
});

/** SQL list of the statuses of tasks that have ended (prune candidates). */
export const ENDED_SQL = sql.raw(`(${ENDED_STATUSES.map((s) => `'${s}'`).join(", ")})`);
