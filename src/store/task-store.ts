/**
 * Tasks and the commands held for them. Statements are prepared once with
 * placeholders and reused, so a call costs a bind and a step, never a SQL compile.
 * Every change goes through the StoreWriter (store-writer.ts); reads see what is committed.
 */
import {
  and,
  asc,
  count,
  desc,
  eq,
  getTableColumns,
  inArray,
  isNotNull,
  max,
  notInArray,
  sql,
} from "drizzle-orm";
import {
  ACTIVE_STATUSES,
  type TaskQuery,
  type TaskStore,
  zeroCountsByStatus,
} from "../core/ports.ts";
import { boundNullable, boundText, HISTORY_TEXT_MAX_BYTES } from "../core/text-bound.ts";
import { heldCommands, meta, taskEvents, tasks } from "./schema.ts";
import type { StoreReader, StoreWriter, WriteTx } from "./store-writer.ts";

/** The meta row counting distinct task ids ever received. */
export const TOTAL_RECEIVED_KEY = "totalTasksProcessed";

const p = sql.placeholder;
/** update().set() takes SQL, not bare placeholders. */
const param = (name: string) => sql`${p(name)}`;

/** The queries, prepared once. A list of statements, hence longer than a function should be. */
function taskReads(reader: StoreReader) {
  const newestFirst = [desc(tasks.receivedAt), desc(tasks.seq)];
  // Pages of history never read the spawn frames: 500 rows of them could be 500 frames.
  const { spawnFrame: _spawnFrame, ...summary } = getTableColumns(tasks);
  return {
    get: reader
      .select()
      .from(tasks)
      .where(eq(tasks.taskId, p("taskId")))
      .prepare(),
    active: reader
      .select()
      .from(tasks)
      .where(inArray(tasks.status, [...ACTIVE_STATUSES]))
      .orderBy(asc(tasks.seq))
      .prepare(),
    listAll: reader
      .select(summary)
      .from(tasks)
      .orderBy(...newestFirst)
      .limit(p("limit"))
      .offset(p("offset"))
      .prepare(),
    listByStatus: reader
      .select(summary)
      .from(tasks)
      .where(eq(tasks.status, p("status")))
      .orderBy(...newestFirst)
      .limit(p("limit"))
      .offset(p("offset"))
      .prepare(),
    countAll: reader.select({ n: count() }).from(tasks).prepare(),
    countStatus: reader
      .select({ n: count() })
      .from(tasks)
      .where(eq(tasks.status, p("status")))
      .prepare(),
    // Walks the (status, seq) index; bounded by prune(), so no in-memory counters
    // that every status change would have to keep in step.
    group: reader
      .select({ status: tasks.status, n: count() })
      .from(tasks)
      .groupBy(tasks.status)
      .prepare(),
    maxSeq: reader
      .select({ max: max(tasks.seq) })
      .from(tasks)
      .prepare(),
    ended: reader
      .select({ n: count() })
      .from(tasks)
      .where(notInArray(tasks.status, [...ACTIVE_STATUSES]))
      .prepare(),
    total: reader
      .select({ value: meta.value })
      .from(meta)
      .where(eq(meta.key, TOTAL_RECEIVED_KEY))
      .prepare(),
    held: reader
      .select({ frame: heldCommands.frame })
      .from(heldCommands)
      .where(eq(heldCommands.taskId, p("taskId")))
      .orderBy(asc(heldCommands.id))
      .prepare(),
  };
}

/** The write statements, declared once (store-writer.ts). A list, like taskReads. */
function taskWrites(writer: StoreWriter) {
  return {
    // One statement for both cases: a new row, or a new attempt of an ended one.
    // An active duplicate (the server resending a spawn) matches neither and
    // returns no row: it keeps its place and attempt count.
    upsert: writer.prepare((db) =>
      db
        .insert(tasks)
        .values({
          taskId: p("taskId"),
          taskName: p("taskName"),
          status: "pending",
          spawnFrame: p("spawnFrame"),
          receivedAt: p("receivedAt"),
          attempts: 1,
          seq: p("seq"),
        })
        .onConflictDoUpdate({
          target: tasks.taskId,
          set: {
            taskName: sql`excluded.task_name`,
            status: "pending",
            spawnFrame: sql`excluded.spawn_frame`,
            dispatchedTo: null,
            machineId: null,
            receivedAt: sql`excluded.received_at`,
            dispatchedAt: null,
            completedAt: null,
            error: null,
            lastReportedStatus: null,
            attempts: sql`${tasks.attempts} + 1`,
            // To the back of the queue, like any new arrival.
            seq: sql`excluded.seq`,
          },
          setWhere: notInArray(tasks.status, [...ACTIVE_STATUSES]),
        })
        .returning()
        .prepare(),
    ),
    dispatch: writer.prepare((db) =>
      db
        .update(tasks)
        .set({
          status: "dispatched",
          dispatchedTo: param("daemonId"),
          machineId: param("machineId"),
          dispatchedAt: param("at"),
        })
        .where(eq(tasks.taskId, p("taskId")))
        .prepare(),
    ),
    end: writer.prepare((db) =>
      db
        .update(tasks)
        .set({ status: param("status"), completedAt: param("at"), error: param("error") })
        // Only an active task ends; the row count keeps the ended-rows counter exact.
        .where(and(eq(tasks.taskId, p("taskId")), inArray(tasks.status, [...ACTIVE_STATUSES])))
        .returning({ id: tasks.taskId })
        .prepare(),
    ),
    report: writer.prepare((db) =>
      db
        .update(tasks)
        .set({ lastReportedStatus: param("status") })
        .where(eq(tasks.taskId, p("taskId")))
        .prepare(),
    ),
    // The `n` oldest ended tasks, walking the completed-at index from its old end.
    // The number of ended rows is kept in memory (createTaskStore), so pruning a
    // step at a time never has to count or skip over the `keep` rows that stay.
    prune: writer.prepare((db) =>
      db
        .delete(tasks)
        .where(
          inArray(
            tasks.taskId,
            db
              .select({ id: tasks.taskId })
              .from(tasks)
              .where(
                and(notInArray(tasks.status, [...ACTIVE_STATUSES]), isNotNull(tasks.completedAt)),
              )
              .orderBy(asc(tasks.completedAt), asc(tasks.seq))
              .limit(p("n")),
          ),
        )
        .returning({ id: tasks.taskId })
        .prepare(),
    ),
    bumpTotal: writer.prepare((db) =>
      db
        .insert(meta)
        .values({ key: TOTAL_RECEIVED_KEY, value: "1" })
        .onConflictDoUpdate({
          target: meta.key,
          set: { value: sql`CAST(${meta.value} AS INTEGER) + 1` },
        })
        .prepare(),
    ),
    hold: writer.prepare((db) =>
      db
        .insert(heldCommands)
        .values({ taskId: p("taskId"), frame: p("frame") })
        .prepare(),
    ),
    dropHeld: writer.prepare((db) =>
      db
        .delete(heldCommands)
        .where(eq(heldCommands.taskId, p("taskId")))
        .prepare(),
    ),
    dropEvents: writer.prepare((db) =>
      db
        .delete(taskEvents)
        .where(eq(taskEvents.taskId, p("taskId")))
        .prepare(),
    ),
  };
}

export function createTaskStore(reader: StoreReader, writer: StoreWriter): TaskStore {
  const read = taskReads(reader);
  const w = taskWrites(writer);
  // Read at open and after a rollback; kept in step by every write applied below
  // (one connection owns the file).
  let nextSeq = 0;
  let endedRows = 0;
  const reload = (): void => {
    nextSeq = (read.maxSeq.get()?.max ?? 0) + 1;
    endedRows = read.ended.get()?.n ?? 0;
  };
  reload();
  writer.onRollback(reload);

  /** A new task, or a new attempt of an ended one; an active duplicate changes nothing. */
  const applySavePending = (tx: WriteTx, task: Parameters<TaskStore["savePending"]>[0]): void => {
    const row = tx(w.upsert).get({ ...task, seq: nextSeq });
    if (row === undefined) return;
    nextSeq += 1;
    if (row.attempts === 1) {
      tx(w.bumpTotal).run();
      return;
    }
    endedRows -= 1;
    // Commands held for the previous attempt, and its timeline, belong to a run that is over.
    tx(w.dropHeld).run({ taskId: task.taskId });
    tx(w.dropEvents).run({ taskId: task.taskId });
  };

  const applyPrune = (tx: WriteTx, keep: number, maxRows: number): number => {
    const excess = Math.min(endedRows - Math.max(0, Math.trunc(keep)), maxRows);
    if (excess <= 0) return 0;
    const deleted = tx(w.prune).all({ n: excess }).length;
    endedRows -= deleted;
    return deleted;
  };

  return {
    get: (taskId) => read.get.get({ taskId }) ?? null,

    savePending: (task) => writer.write((tx) => applySavePending(tx, task)),

    markDispatched: (taskId, daemonId, machineId, at) =>
      writer.write((tx) => tx(w.dispatch).run({ taskId, daemonId, machineId, at })),

    markEnded: (taskId, status, at, error) => {
      if (ACTIVE_STATUSES.includes(status)) {
        throw new RangeError(`markEnded with active status ${status}`);
      }
      // History keeps a bounded copy; the frame upstream carried the whole text.
      const kept = boundNullable(error, HISTORY_TEXT_MAX_BYTES);
      writer.write((tx) => {
        if (tx(w.end).all({ taskId, status, at, error: kept }).length > 0) endedRows += 1;
      });
    },

    setReportedStatus: (taskId, status) => {
      const kept = boundText(status, HISTORY_TEXT_MAX_BYTES);
      writer.write((tx) => tx(w.report).run({ taskId, status: kept }));
    },

    loadActive: () => read.active.all(),

    totalReceived: () => Number(read.total.get()?.value ?? 0) || 0,

    list: ({ limit, offset, status }: TaskQuery) => {
      // Rows and total agree without a read transaction: every write reaches the
      // file in a COMMIT made synchronously on this one connection (store-writer.ts),
      // so none can land between these two statements.
      const page =
        status === undefined
          ? read.listAll.all({ limit, offset })
          : read.listByStatus.all({ limit, offset, status });
      const total =
        status === undefined ? read.countAll.get()?.n : read.countStatus.get({ status })?.n;
      return { tasks: page, total: total ?? 0 };
    },

    countByStatus: () => {
      const counts = zeroCountsByStatus();
      for (const { status, n } of read.group.all()) counts[status] = n;
      return counts;
    },

    prune: (keep, maxRows = Number.MAX_SAFE_INTEGER, pruned) =>
      writer.write((tx) => applyPrune(tx, keep, maxRows), pruned),

    holdCommand: (taskId, frame) => writer.write((tx) => tx(w.hold).run({ taskId, frame })),

    dropHeldCommands: (taskId) => writer.write((tx) => tx(w.dropHeld).run({ taskId })),

    heldCommands: (taskId) => read.held.all({ taskId }).map((r) => r.frame),
  };
}
