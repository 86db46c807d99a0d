/**
 * The task_events table (src/core/task-timeline.ts decides what goes in it).
 * An event costs one prepared insert, and past a task's bound one delete by
 * key; a task's rows go with the task (ON DELETE CASCADE when prune() removes
 * it, and task-store.ts drops them when a new attempt starts).
 */
import { and, asc, desc, eq, sql } from "drizzle-orm";
import type { TaskEvent, TaskEventStore } from "../core/ports.ts";
import { taskEvents } from "./schema.ts";
import type { StoreReader, StoreWriter } from "./store-writer.ts";

const p = sql.placeholder;

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
  const insert = writer.prepare((db) =>
    db
      .insert(taskEvents)
      .values({
        taskId: p("taskId"),
        n: p("n"),
        at: p("at"),
        kind: p("kind"),
        machineId: p("machineId"),
        detail: p("detail"),
        upstream: p("upstream"),
        outputFrames: p("outputFrames"),
        outputBytes: p("outputBytes"),
      })
      .prepare(),
  );
  const evict = writer.prepare((db) =>
    db
      .delete(taskEvents)
      .where(and(eq(taskEvents.taskId, p("taskId")), eq(taskEvents.n, p("n"))))
      .prepare(),
  );
  return {
    append: (taskId, event, evicted) =>
      writer.write((tx) => {
        tx(insert).run({ taskId, ...event });
        if (evicted !== null) tx(evict).run({ taskId, n: evicted });
      }),
    list: (taskId) => list.all({ taskId }) as TaskEvent[],
    last: (taskId) => (last.get({ taskId }) as TaskEvent | undefined) ?? null,
  };
}
