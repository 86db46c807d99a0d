/**
 * The task_events table (src/core/task-timeline.ts decides what goes in it).
 * An event costs one prepared insert, and past a task's bound one delete by
 * key; a task's rows go with the task (task-store.ts deletes them when prune()
 * removes it, and when a new attempt starts).
 */
import { asc, desc, eq, sql } from "drizzle-orm";
import type { TaskEvent, TaskEventStore } from "../core/ports.ts";
import { taskEvents } from "./schema.ts";
import type { StoreReader, StoreWriter } from "./store-writer.ts";

const p = sql.placeholder;

/** task_id, n, at, kind, machine_id, detail, upstream, output_frames, output_bytes */
type InsertArgs = [
  string,
  number,
  number,
  string,
  string | null,
  string | null,
  string | null,
  number,
  number,
];

const columns = {
  n: taskEvents.n,
  at: taskEvents.at,
  kind: taskEvents.kind,
  machineId: taskEvents.machineId,
  detail: taskEvents.detail,
  upstream: taskEvents.upstream,
  outputFrames: taskEvents.outputFrames,
  outputBytes: taskEvents.outputBytes,
};

export function createTaskEventStore(reader: StoreReader, writer: StoreWriter): TaskEventStore {
  const list = reader
    .select(columns)
    .from(taskEvents)
    .where(eq(taskEvents.taskId, p("taskId")))
    .orderBy(asc(taskEvents.n))
    .prepare();
  const last = reader
    .select(columns)
    .from(taskEvents)
    .where(eq(taskEvents.taskId, p("taskId")))
    .orderBy(desc(taskEvents.n))
    .limit(1)
    .prepare();
  // Raw bun:sqlite statements: every task's end writes one (and some tasks a few
  // more), so an event costs a bind and a step, without drizzle's parameter mapping.
  const insert = writer.prepare((_db, sqlite) =>
    sqlite.prepare<never, InsertArgs>(
      `INSERT INTO task_events (task_id, n, at, kind, machine_id, detail, upstream,
         output_frames, output_bytes)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`,
    ),
  );
  const evict = writer.prepare((_db, sqlite) =>
    sqlite.prepare<never, [string, number]>(
      "DELETE FROM task_events WHERE task_id = ?1 AND n = ?2",
    ),
  );
  return {
    append: (taskId, e, evicted) =>
      writer.write((tx) => {
        tx(insert).run(
          taskId,
          e.n,
          e.at,
          e.kind,
          e.machineId,
          e.detail,
          e.upstream,
          e.outputFrames,
          e.outputBytes,
        );
        if (evicted !== null) tx(evict).run(taskId, evicted);
      }),
    list: (taskId) => list.all({ taskId }) as TaskEvent[],
    last: (taskId) => (last.get({ taskId }) as TaskEvent | undefined) ?? null,
  };
}
