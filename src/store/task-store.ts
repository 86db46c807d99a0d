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
  notInArray,
  sql,
} from "drizzle-orm";
import {
  ACTIVE_STATUSES,
  TASK_STATUSES,
  type TaskQuery,
  type TaskStore,
  zeroCountsByStatus,
} from "../core/ports.ts";
import { boundNullable, boundText, HISTORY_TEXT_MAX_BYTES } from "../core/text-bound.ts";
import type { RelayDb } from "./relay-db.ts";
import { heldCommands, meta, taskEvents, tasks } from "./schema.ts";
import type { StoreReader, StoreWriter, WriteTx } from "./store-writer.ts";

/**
 * The meta row counting task rows pruned, ever. Distinct task ids received =
 * rows kept + rows pruned, so the count moves only in prune's own transaction:
 * a new task does not write the meta page in the commit that records it.
 */
export const PRUNED_KEY = "tasksPruned";

const p = sql.placeholder;
/** The active statuses as an SQL list, for the raw statements below. */
const ACTIVE_SQL = `(${ACTIVE_STATUSES.map((s) => `'${s}'`).join(", ")})`;

/** task_id, task_name, status, spawn_frame, dispatched_to, machine_id, received_at, dispatched_at, seq (also the rowid) */
type UpsertArgs = [
  string,
  string,
  string,
  string,
  string | null,
  string | null,
  number,
  number | null,
  number,
];

type NewTask = Parameters<TaskStore["savePending"]>[0];

/** Where a task went, when it was dispatched before its insert was applied. */
interface Dispatch {
  daemonId: string;
  machineId: string;
  at: number;
}
/** update().set() takes SQL, not bare placeholders. */
const param = (name: string) => sql`${p(name)}`;

/** The queries, prepared once. A list of statements, hence longer than a function should be. */
function taskReads(reader: StoreReader) {
  // Newest received first: seq order, which is rowid order (schema.ts), so the
  // whole history is the table walked backwards and a status's is its index's.
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
      .orderBy(desc(sql`rowid`))
      .limit(p("limit"))
      .offset(p("offset"))
      .prepare(),
    listByStatus: reader
      .select(summary)
      .from(tasks)
      .where(eq(tasks.status, p("status")))
      .orderBy(desc(tasks.seq))
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
    // One descent of the (status, seq) index per status: no index leads with seq, so
    // a plain MAX(seq) would scan one (schema.ts).
    maxSeq: reader.query<{ max: number | null }, []>(
      `SELECT MAX(m) AS max FROM (${TASK_STATUSES.map(
        (s) => `SELECT MAX(seq) AS m FROM tasks WHERE status = '${s}'`,
      ).join(" UNION ALL ")})`,
    ),
    ended: reader
      .select({ n: count() })
      .from(tasks)
      .where(notInArray(tasks.status, [...ACTIVE_STATUSES]))
      .prepare(),
    pruned: reader
      .select({ value: meta.value })
      .from(meta)
      .where(eq(meta.key, PRUNED_KEY))
      .prepare(),
    held: reader
      .select({ frame: heldCommands.frame })
      .from(heldCommands)
      .where(eq(heldCommands.taskId, p("taskId")))
      .orderBy(asc(heldCommands.id))
      .prepare(),
  };
}

/**
 * The `n` oldest ended tasks, walking the completed-at index from its old end.
 * The number of ended rows is kept in memory (createTaskStore), so pruning a
 * step at a time never has to count or skip over the `keep` rows that stay.
 */
function oldestEnded(db: RelayDb) {
  return db
    .select({ id: tasks.taskId })
    .from(tasks)
    .where(and(notInArray(tasks.status, [...ACTIVE_STATUSES]), isNotNull(tasks.completedAt)))
    .orderBy(asc(tasks.completedAt), asc(tasks.seq))
    .limit(p("n"));
}

/** The write statements, declared once (store-writer.ts). A list, like taskReads. */
function taskWrites(writer: StoreWriter) {
  return {
    // One statement for both cases: a new row, or a new attempt of an ended one.
    // An active duplicate (the server resending a spawn) matches neither and
    // returns no row: it keeps its place and attempt count. The status and the
    // dispatch columns are bound, so that a task dispatched in the turn it was
    // received is written once, already dispatched (see createTaskStore).
    upsert: writer.prepare((_db, sqlite) =>
      sqlite.prepare<{ attempts: number }, UpsertArgs>(
        `INSERT INTO tasks (rowid, task_id, task_name, status, spawn_frame, dispatched_to,
           machine_id, received_at, dispatched_at, attempts, seq)
         VALUES (?9, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9)
         ON CONFLICT (task_id) DO UPDATE SET
           task_name = excluded.task_name, status = excluded.status,
           spawn_frame = excluded.spawn_frame, dispatched_to = excluded.dispatched_to,
           machine_id = excluded.machine_id, received_at = excluded.received_at,
           dispatched_at = excluded.dispatched_at, completed_at = NULL, error = NULL,
           last_reported_status = NULL, attempts = tasks.attempts + 1,
           -- To the back of the queue and to the top of the history, like any new arrival.
           seq = excluded.seq, rowid = excluded.seq
         WHERE tasks.status NOT IN ${ACTIVE_SQL}
         RETURNING attempts`,
      ),
    ),
    // Raw bun:sqlite statements on the hot path: a bind and a step, no row mapping.
    dispatch: writer.prepare((_db, sqlite) =>
      sqlite.prepare<never, [string, string, string, number]>(
        `UPDATE tasks SET status = 'dispatched', dispatched_to = ?2, machine_id = ?3,
           dispatched_at = ?4 WHERE task_id = ?1`,
      ),
    ),
    // Only an active task ends; the row count keeps the ended-rows counter exact.
    end: writer.prepare((_db, sqlite) =>
      sqlite.prepare<never, [string, string, number, string | null]>(
        `UPDATE tasks SET status = ?2, completed_at = ?3, error = ?4
         WHERE task_id = ?1 AND status IN ${ACTIVE_SQL}`,
      ),
    ),
    report: writer.prepare((db) =>
      db
        .update(tasks)
        .set({ lastReportedStatus: param("status") })
        .where(eq(tasks.taskId, p("taskId")))
        .prepare(),
    ),
    // The `n` oldest ended tasks' events, then the tasks: the same ids both times
    // (completed_at, then the unique seq, orders them), in one transaction.
    pruneEvents: writer.prepare((db) =>
      db
        .delete(taskEvents)
        .where(inArray(taskEvents.taskId, oldestEnded(db)))
        .prepare(),
    ),
    prune: writer.prepare((db) =>
      db
        .delete(tasks)
        .where(inArray(tasks.taskId, oldestEnded(db)))
        .returning({ id: tasks.taskId })
        .prepare(),
    ),
    setPruned: writer.prepare((_db, sqlite) =>
      sqlite.prepare<never, [string, string]>(
        `INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      ),
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

/** The TaskStore port as one object of one-line methods over taskReads and taskWrites. */
export function createTaskStore(reader: StoreReader, writer: StoreWriter): TaskStore {
  const read = taskReads(reader);
  const w = taskWrites(writer);
  // Read at open and after a rollback; kept in step by every write applied below
  // (one connection owns the file).
  let nextSeq = 0;
  let endedRows = 0;
  let rows = 0;
  let pruned = 0;
  const reload = (): void => {
    nextSeq = (read.maxSeq.get()?.max ?? 0) + 1;
    endedRows = read.ended.get()?.n ?? 0;
    rows = read.countAll.get()?.n ?? 0;
    pruned = Number(read.pruned.get()?.value ?? 0) || 0;
  };
  reload();
  writer.onRollback(reload);

  /**
   * Inserts not applied yet, by task: a dispatch made before its task's insert
   * is applied (received and dispatched in one turn, the usual case) is folded
   * into that insert, one write instead of an insert and an update. Once an
   * insert has been applied it leaves this map, so a later dispatch is its own
   * update, queued after it (and re-applied after it if the commit fails).
   */
  const unapplied = new Map<string, { dispatch: Dispatch | null }>();

  /** A new task, or a new attempt of an ended one; an active duplicate changes nothing. */
  const applySavePending = (tx: WriteTx, task: NewTask, dispatch: Dispatch | null): void => {
    const row = tx(w.upsert).get(
      task.taskId,
      task.taskName,
      dispatch ? "dispatched" : "pending",
      task.spawnFrame,
      dispatch?.daemonId ?? null,
      dispatch?.machineId ?? null,
      task.receivedAt,
      dispatch?.at ?? null,
      nextSeq,
    );
    if (row === null) {
      // An active duplicate keeps its row; its dispatch is still recorded, as an update would.
      if (dispatch) applyDispatch(tx, task.taskId, dispatch);
      return;
    }
    nextSeq += 1;
    if (row.attempts === 1) {
      rows += 1;
      return;
    }
    endedRows -= 1;
    // Commands held for the previous attempt, and its timeline, belong to a run that is over.
    tx(w.dropHeld).run({ taskId: task.taskId });
    tx(w.dropEvents).run({ taskId: task.taskId });
  };

  const applyDispatch = (tx: WriteTx, taskId: string, d: Dispatch): void => {
    tx(w.dispatch).run(taskId, d.daemonId, d.machineId, d.at);
  };

  const savePending = (task: NewTask): void => {
    const pending = { dispatch: null as Dispatch | null };
    // A second spawn of the same id in one turn: the first insert keeps any dispatch.
    if (!unapplied.has(task.taskId)) unapplied.set(task.taskId, pending);
    writer.write((tx) => {
      if (unapplied.get(task.taskId) === pending) unapplied.delete(task.taskId);
      applySavePending(tx, task, pending.dispatch);
    });
  };

  const markDispatched = (taskId: string, daemonId: string, machineId: string, at: number) => {
    const pending = unapplied.get(taskId);
    if (pending && pending.dispatch === null) {
      pending.dispatch = { daemonId, machineId, at };
      return;
    }
    const d = { daemonId, machineId, at };
    writer.write((tx) => applyDispatch(tx, taskId, d));
  };

  const applyPrune = (tx: WriteTx, keep: number, maxRows: number): number => {
    const excess = Math.min(endedRows - Math.max(0, Math.trunc(keep)), maxRows);
    if (excess <= 0) return 0;
    // Events first: they are found through their tasks (no foreign key cascades: schema.ts).
    tx(w.pruneEvents).run({ n: excess });
    const deleted = tx(w.prune).all({ n: excess }).length;
    endedRows -= deleted;
    rows -= deleted;
    pruned += deleted;
    tx(w.setPruned).run(PRUNED_KEY, String(pruned));
    return deleted;
  };

  return {
    get: (taskId) => read.get.get({ taskId }) ?? null,

    savePending,

    markDispatched,

    markEnded: (taskId, status, at, error) => {
      if (ACTIVE_STATUSES.includes(status)) {
        throw new RangeError(`markEnded with active status ${status}`);
      }
      // History keeps a bounded copy; the frame upstream carried the whole text.
      const kept = boundNullable(error, HISTORY_TEXT_MAX_BYTES);
      writer.write((tx) => {
        if (tx(w.end).run(taskId, status, at, kept).changes > 0) endedRows += 1;
      });
    },

    setReportedStatus: (taskId, status) => {
      const kept = boundText(status, HISTORY_TEXT_MAX_BYTES);
      writer.write((tx) => tx(w.report).run({ taskId, status: kept }));
    },

    loadActive: () => read.active.all(),

    totalReceived: () => rows + pruned,

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
