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

export type TaskStatus = "pending" | "dispatched" | "completed" | "failed" | "cancelled" | "lost";
export const ACTIVE_STATUSES: readonly TaskStatus[] = ["pending", "dispatched"];
/** Every status, in lifecycle order (for validation and for per-status figures). */
export const TASK_STATUSES = [
  "pending",
  "dispatched",
  "completed",
  "failed",
  "cancelled",
  "lost",
] as const satisfies readonly TaskStatus[];

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

export interface TaskQuery {
  limit: number;
  offset: number;
  status?: TaskStatus;
}

export interface TaskStore {
  get(taskId: string): TaskRecord | null;
  /** Inserts a new task or starts a new attempt of an ended one (attempts + 1). */
  savePending(task: {
    taskId: string;
    taskName: string;
    spawnFrame: string;
    receivedAt: number;
  }): TaskRecord;
  markDispatched(taskId: string, daemonId: string, machineId: string, at: number): void;
  markEnded(taskId: string, status: TaskStatus, at: number, error: string | null): void;
  setReportedStatus(taskId: string, status: string): void;
  /** Tasks that have not ended, pending ones in FIFO order. */
  loadActive(): TaskRecord[];
  list(query: TaskQuery): { tasks: TaskRecord[]; total: number };
  countByStatus(): Record<TaskStatus, number>;
  /**
   * Deletes the oldest ended tasks beyond `keep`, at most `maxRows` of them per
   * call (so a large backlog is pruned in steps, never in one long stall);
   * never pending or dispatched ones. Returns how many went.
   */
  prune(keep: number, maxRows?: number): number;
  /** Commands held for a task that is queued or whose daemon is away. */
  holdCommand(taskId: string, frame: string): void;
  takeHeldCommands(taskId: string): string[];
  heldCommands(taskId: string): string[];
}

export interface OutboxEntry {
  id: number;
  frame: string;
  bytes: number;
  critical: boolean;
}

/** Durable, append-only queue of frames for the server. */
export interface OutboxStore {
  append(frame: string, critical: boolean): void;
  /** Oldest entries first. */
  peek(limit: number): OutboxEntry[];
  /**
   * Deletes every entry with id <= `id`. A caller that knows what those rows
   * held (it just read them) passes it, saving the store a query.
   */
  deleteThrough(id: number, removed?: { frames: number; bytes: number }): void;
  /** Deletes the oldest non-critical entries until `bytes` are freed; returns what went. */
  dropOldestNonCritical(bytes: number): { frames: number; bytes: number };
  stats(): { frames: number; bytes: number };
}

export interface ConnectionLogEntry {
  id: number;
  event: string;
  timestamp: number;
  details: string | null;
}

export interface ConnectionLogStore {
  insert(event: string, timestamp: number, details: string | null): void;
  /** Newest first. */
  list(limit: number): ConnectionLogEntry[];
}

/** Small persistent key/value facts: machineId, counters. */
export interface MetaStore {
  get(key: string): string | null;
  set(key: string, value: string): void;
  /** Adds `by` to a numeric value (0 if absent) and returns the new value. */
  increment(key: string, by?: number): number;
}

export interface Stores {
  tasks: TaskStore;
  outbox: OutboxStore;
  connectionLog: ConnectionLogStore;
  meta: MetaStore;
  /** Runs `fn` in one transaction (synchronous; never pass an async function). */
  transaction<T>(fn: () => T): T;
  /**
   * Runs `fn` once the writes made so far are committed: at once when no
   * write batch is open, else right after the batch's COMMIT, in call order.
   * Every frame the relay sends goes through here, so no peer ever hears of a
   * state (a dispatch, a completion) that a crash could still undo.
   */
  afterCommit(fn: () => void): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Structured logging; `connection` events also go to the connection log. */
export interface EventLog {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
  /** A connection-log event: written to stdout and to the connection_log table. */
  connection(event: string, details: string, level?: LogLevel): void;
}
