/**
 * The narrow interfaces through which the relay core talks to the world.
 * Adapters (transport/, store/) implement them; tests pass fakes.
 */

/** What a send did: written, queued under backpressure, or lost (socket gone). */
export type SendResult = "sent" | "backpressure" | "dropped";

/** A daemon's socket as the core sees it. */
export interface DaemonConnection {
  readonly id: string;
  readonly remoteAddress: string;
  send(text: string): SendResult;
  close(code: number, reason: string): void;
  /** Stop / start reading from the socket (flow control); the peer sees TCP backpressure. */
  pause?(): void;
  resume?(): void;
}

const ACTIVE = ["pending", "dispatched"] as const;
const ENDED = ["completed", "failed", "cancelled", "lost"] as const;
/** Every status, in lifecycle order: the one list of them (validation, per-status figures, SQL). */
export const TASK_STATUSES = [...ACTIVE, ...ENDED] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
/** A task that has ended: history, prune candidates, `tasks_ended_total`. */
export type EndedStatus = (typeof ENDED)[number];
export const ACTIVE_STATUSES: readonly TaskStatus[] = ACTIVE;
export const ENDED_STATUSES: readonly EndedStatus[] = ENDED;

/** A count per status, all zero (what countByStatus starts from). */
export function zeroCountsByStatus(): Record<TaskStatus, number> {
  return Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
}

/** A task row. Times are integer milliseconds since the epoch. */
export interface TaskRecord {
  taskId: string;
  taskName: string;
  status: TaskStatus;
  spawnFrame: string;
  dispatchedTo: string | null;
  machineId: string | null;
  receivedAt: number;
  dispatchedAt: number | null;
  completedAt: number | null;
  error: string | null;
  lastReportedStatus: string | null;
  attempts: number;
  /** Position in FIFO order of arrival (monotonic). */
  seq: number;
}

/** A task as history lists it: without its spawn frame (the task's payload, up to a frame). */
export type TaskSummary = Omit<TaskRecord, "spawnFrame">;

export interface TaskQuery {
  limit: number;
  offset: number;
  status?: TaskStatus;
}

export interface TaskStore {
  get(taskId: string): TaskRecord | null;
  /**
   * Inserts a new task or starts a new attempt of an ended one (attempts + 1,
   * its old held commands and timeline events dropped). A task id seen for
   * the first time counts once in `totalReceived`.
   */
  savePending(task: {
    taskId: string;
    taskName: string;
    spawnFrame: string;
    receivedAt: number;
  }): void;
  markDispatched(taskId: string, daemonId: string, machineId: string, at: number): void;
  markEnded(taskId: string, status: TaskStatus, at: number, error: string | null): void;
  setReportedStatus(taskId: string, status: string): void;
  /** Tasks that have not ended, pending ones in FIFO order. */
  loadActive(): TaskRecord[];
  list(query: TaskQuery): { tasks: TaskSummary[]; total: number };
  countByStatus(): Record<TaskStatus, number>;
  /** Distinct task ids ever received (a counter: pruning history does not lower it). */
  totalReceived(): number;
  /**
   * Deletes the oldest ended tasks beyond `keep`, at most `maxRows` of them per
   * call (so a large backlog is pruned in steps, never in one long stall);
   * never pending or dispatched ones. `pruned` hears how many went, once committed.
   */
  prune(keep: number, maxRows?: number, pruned?: (deleted: number) => void): void;
  /** Commands held for a task that is queued or whose daemon is away, in arrival order. */
  holdCommand(taskId: string, frame: string): void;
  /** The held commands were delivered (or the task ended): forget them. */
  dropHeldCommands(taskId: string): void;
  heldCommands(taskId: string): string[];
}

/**
 * What can happen to a task after it was received (task-timeline.ts). Its
 * reception and dispatch are not among them: the task's own row has their
 * time and machine, and the timeline reads them from there.
 */
export const TASK_EVENT_KINDS = [
  "queued",
  "commandsDelivered",
  "statusReported",
  "output",
  "away",
  "reattached",
  "throttled",
  ...ENDED,
] as const;
export type TaskEventKind = (typeof TASK_EVENT_KINDS)[number];

/** Where a task's result went: straight to the server, or into the outbox to wait for it. */
export type UpstreamDisposition = "sent" | "held";

/** One stored event of a task's timeline. Times are integer milliseconds since the epoch. */
export interface TaskEvent {
  /** Its place in the task's timeline, from 0; a gap is where the bound left events out. */
  n: number;
  at: number;
  kind: TaskEventKind;
  /** The machine holding the task then (null while queued). */
  machineId: string | null;
  /** What the kind needs said: the status reported, how many commands, why throttled, ... */
  detail: string | null;
  /** On an ended event: where the result that reported it went. */
  upstream: UpstreamDisposition | null;
  /** Output frames, and their bytes, relayed for the task by then. */
  outputFrames: number;
  outputBytes: number;
}

/**
 * The stored events of each task's current attempt. A task's events go with
 * it: when history pruning deletes the task, and when a new attempt starts.
 */
export interface TaskEventStore {
  /** Appends `event`; `evict`: the n of an earlier event of the task to delete with it (the bound). */
  append(taskId: string, event: TaskEvent, evict: number | null): void;
  /** The task's committed events, in order. */
  list(taskId: string): TaskEvent[];
  /** Its latest committed event (after a restart the timeline goes on from there). */
  last(taskId: string): TaskEvent | null;
}

export interface OutboxEntry {
  id: number;
  frame: string;
  bytes: number;
  critical: boolean;
}

/** What the outbox's size limit removed to make room, or refused. */
export interface OutboxDrop {
  frames: number;
  bytes: number;
  /** Bytes of the appended frame itself when it did not fit (full of critical frames), else 0. */
  refused: number;
}

/** Durable, append-only queue of frames for the server, within a byte budget. */
export interface OutboxStore {
  /**
   * Appends a frame. Over `maxBytes`, the oldest non-critical frames are
   * dropped first to make room; a non-critical frame that still does not fit
   * is refused. `stored` is told once the append is committed, with what the
   * limit dropped (null: nothing).
   */
  append(
    frame: string,
    critical: boolean,
    maxBytes: number,
    stored?: (drop: OutboxDrop | null) => void,
  ): void;
  /** Committed entries with id > `afterId`, oldest first. */
  peekAfter(afterId: number, limit: number): OutboxEntry[];
  /**
   * Every entry with id <= `id` was sent: from now on it is not counted
   * (stats) nor dropped by the limit, and its delete rides on the next append
   * (whose commit writes the same pages), asking for no write of its own. Until
   * that commit a crash keeps it, and it is sent again after the restart (at
   * least once).
   */
  markSent(id: number): void;
  /**
   * Writes the delete of the entries marked sent as a write of its own (a
   * commit), unless an append already carried it; false when none was needed.
   * For an idle relay (a timer) and for shutdown.
   */
  deleteSent(): boolean;
  /** Committed frames and bytes, not counting the entries marked sent. */
  stats(): { frames: number; bytes: number };
}

export interface ConnectionLogEntry {
  id: number;
  event: string;
  timestamp: number;
  details: string | null;
}

/** How a connection-log row is kept (connection-log-store.ts). */
export interface ConnectionLogOptions {
  /**
   * A security event (a takeover refused, a daemon replaced, a binding
   * released): kept apart, with a retention of its own, so that other
   * events never push it out of the log.
   */
  security?: boolean;
  /** Replaces the row logged earlier with the same key (a repeated event shown once, with a count). */
  replaces?: string;
}

export interface ConnectionLogStore {
  insert(
    event: string,
    timestamp: number,
    details: string | null,
    options?: ConnectionLogOptions,
  ): void;
  /** Newest first; up to half of `limit` is kept for the newest security events, however old. */
  list(limit: number): ConnectionLogEntry[];
}

/** Small persistent key/value facts: the machineId. */
export interface MetaStore {
  get(key: string): string | null;
  set(key: string, value: string): void;
}

/** A machineId and the fingerprint of the key it first authenticated with (never the key). */
export interface MachineBinding {
  machineId: string;
  fingerprint: string;
  boundAt: number;
}

/** Which key each machineId belongs to (docs/protocol.md "Authentication", point 5). */
export interface BindingStore {
  all(): MachineBinding[];
  bind(binding: MachineBinding): void;
  release(machineId: string): void;
}

export interface Stores {
  tasks: TaskStore;
  taskEvents: TaskEventStore;
  outbox: OutboxStore;
  connectionLog: ConnectionLogStore;
  meta: MetaStore;
  bindings: BindingStore;
  /**
   * Runs `fn` once the writes made so far are committed: at once when none is
   * waiting, else right after the COMMIT that carries them, in call order.
   * Every frame the relay sends goes through here, so no peer ever hears of a
   * state (a dispatch, a completion) that a crash could still undo.
   */
  afterCommit(fn: () => void): void;
  /** Whether commits succeed (docs/protocol.md "Storage failures"). */
  storage(): StorageStatus;
}

/** Healthy, or failing since `since` with the last error, retried with backoff. */
export type StorageStatus =
  | { ok: true }
  | {
      ok: false;
      /** SQLite result code, e.g. SQLITE_FULL, SQLITE_IOERR_WRITE, SQLITE_BUSY. */
      code: string;
      error: string;
      since: number;
      attempts: number;
      /** Writes kept in memory, waiting for a commit that succeeds. */
      pendingWrites: number;
    };

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Structured logging; `connection` events also go to the connection log. */
export interface EventLog {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
  /** A connection-log event: written to stdout and to the connection_log table. */
  connection(
    event: string,
    details: string,
    level?: LogLevel,
    options?: ConnectionLogOptions,
  ): void;
}
