/**
 * Test doubles for the ports in src/core/ports.ts and the upstream transport.
 * No sockets and no real timers: tests drive every event themselves.
 */

import type { Daemon } from "../../src/core/daemon-registry.ts";
import type {
  ConnectionLogEntry,
  ConnectionLogStore,
  DaemonConnection,
  EventLog,
  LogLevel,
  MetaStore,
  OutboxEntry,
  OutboxStore,
  SendResult,
  Stores,
  TaskQuery,
  TaskRecord,
  TaskStatus,
  TaskStore,
} from "../../src/core/ports.ts";
import { ACTIVE_STATUSES } from "../../src/core/ports.ts";
import type {
  UpstreamHandlers,
  UpstreamSocket,
  UpstreamTransport,
} from "../../src/core/upstream-link.ts";

export type Json = Record<string, unknown>;

// ---- daemons ----------------------------------------------------------------

/** A daemon record as the registry holds one (idle, capacity 1), for registry and dispatch tests. */
export function fakeDaemon(id: string, over: Partial<Daemon> = {}): Daemon {
  return {
    conn: new FakeConnection(id),
    daemonId: `d-${id}`,
    machineId: `m-${id}`,
    hostname: id,
    role: "daemon",
    capacity: 1,
    tasks: new Set(),
    connectedAt: 0,
    lastSeen: 0,
    lastHeartbeat: null,
    turn: 0,
    backpressured: false,
    reconcile: null,
    retired: false,
    limiter: null,
    lastRateLimitNotice: 0,
    ...over,
  };
}

// ---- daemon connections ----------------------------------------------------

/**
 * A daemon socket that records what the relay wrote and how it closed it.
 * Like Bun's ServerWebSocket, close() runs the close handler synchronously
 * (set `onClose` to `relay.daemonClosed`), and a closed socket drops sends.
 */
export class FakeConnection implements DaemonConnection {
  readonly sent: string[] = [];
  closed: { code: number; reason: string } | null = null;
  /** Results of the next sends, in order; afterwards `defaultResult`. */
  readonly results: SendResult[] = [];
  defaultResult: SendResult = "sent";
  onClose: ((code: number, reason: string) => void) | null = null;

  constructor(
    readonly id: string,
    readonly remoteAddress = "10.0.0.1",
  ) {}

  send(text: string): SendResult {
    if (this.closed) return "dropped";
    const result = this.results.shift() ?? this.defaultResult;
    if (result !== "dropped") this.sent.push(text);
    return result;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    this.onClose?.(code, reason);
  }

  /** Every frame written so far, parsed. */
  frames(): Json[] {
    return this.sent.map((s) => JSON.parse(s) as Json);
  }

  types(): string[] {
    return this.frames().map((f) => f.type as string);
  }

  /** Forgets what was sent so far (to assert on what comes next). */
  clear(): void {
    this.sent.length = 0;
  }
}

// ---- upstream transport ----------------------------------------------------

/**
 * One upstream socket. Its methods never call the link's handlers: the
 * "server side" helpers (open, message, serverClose, ...) do, and tests call
 * them after the transport call has returned, as a real WebSocket would.
 */
export class FakeUpstreamSocket implements UpstreamSocket {
  readonly sent: string[] = [];
  closedWith: { code: number; reason: string } | null = null;
  terminated = false;
  sendResult: SendResult = "sent";

  constructor(
    readonly url: string,
    readonly handlers: UpstreamHandlers,
  ) {}

  send(text: string): SendResult {
    if (this.closedWith || this.terminated) return "dropped";
    this.sent.push(text);
    return this.sendResult;
  }

  close(code: number, reason: string): void {
    this.closedWith ??= { code, reason };
  }

  terminate(): void {
    this.terminated = true;
  }

  frames(): Json[] {
    return this.sent.map((s) => JSON.parse(s) as Json);
  }

  // server side
  open(): void {
    this.handlers.onOpen();
  }

  message(frame: Json | string): void {
    this.handlers.onMessage(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  authenticated(daemonId = "upstream-daemon-1"): void {
    this.message({ type: "authenticated", daemonId });
  }

  serverClose(code = 1006, reason = ""): void {
    this.handlers.onClose(code, reason);
  }

  error(message: string): void {
    this.handlers.onError(message);
  }

  drain(): void {
    this.handlers.onDrain();
  }
}

export class FakeTransport {
  readonly sockets: FakeUpstreamSocket[] = [];
  /** Makes the next transport call throw (a bad URL, say). */
  throwNext: Error | null = null;

  readonly connect: UpstreamTransport = (url, handlers) => {
    if (this.throwNext) {
      const err = this.throwNext;
      this.throwNext = null;
      throw err;
    }
    const socket = new FakeUpstreamSocket(url, handlers);
    this.sockets.push(socket);
    return socket;
  };

  get calls(): number {
    return this.sockets.length;
  }

  get last(): FakeUpstreamSocket {
    const s = this.sockets.at(-1);
    if (!s) throw new Error("no upstream socket was created");
    return s;
  }
}

// ---- logging ----------------------------------------------------------------

export interface LogEntry {
  kind: "log" | "connection";
  level: LogLevel;
  event: string;
  details?: string;
  fields?: Record<string, unknown>;
}

export class FakeLog implements EventLog {
  readonly entries: LogEntry[] = [];

  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void {
    this.entries.push({ kind: "log", level, event, ...(fields ? { fields } : {}) });
  }

  connection(event: string, details: string, level: LogLevel = "info"): void {
    this.entries.push({ kind: "connection", level, event, details });
  }

  events(name: string): LogEntry[] {
    return this.entries.filter((e) => e.event === name);
  }
}

// ---- stores -----------------------------------------------------------------

const isActive = (s: TaskStatus): boolean => ACTIVE_STATUSES.includes(s);

export class MemoryTaskStore implements TaskStore {
  readonly rows = new Map<string, TaskRecord>();
  private readonly held = new Map<string, string[]>();
  private seq = 0;

  get(taskId: string): TaskRecord | null {
    const row = this.rows.get(taskId);
    return row ? { ...row } : null;
  }

  savePending(task: {
    taskId: string;
    taskName: string;
    spawnFrame: string;
    receivedAt: number;
  }): TaskRecord {
    const existing = this.rows.get(task.taskId);
    if (existing && isActive(existing.status)) return { ...existing };
    const row: TaskRecord = {
      ...task,
      status: "pending",
      dispatchedTo: null,
      machineId: null,
      dispatchedAt: null,
      completedAt: null,
      error: null,
      lastReportedStatus: null,
      attempts: (existing?.attempts ?? 0) + 1,
      seq: ++this.seq,
    };
    if (existing) this.held.delete(task.taskId);
    this.rows.set(task.taskId, row);
    return { ...row };
  }

  private update(taskId: string, patch: Partial<TaskRecord>): void {
    const row = this.rows.get(taskId);
    if (row) Object.assign(row, patch);
  }

  markDispatched(taskId: string, daemonId: string, machineId: string, at: number): void {
    this.update(taskId, {
      status: "dispatched",
      dispatchedTo: daemonId,
      machineId,
      dispatchedAt: at,
    });
  }

  markEnded(taskId: string, status: TaskStatus, at: number, error: string | null): void {
    if (isActive(status)) throw new RangeError(`markEnded with active status ${status}`);
    this.update(taskId, { status, completedAt: at, error });
  }

  setReportedStatus(taskId: string, status: string): void {
    this.update(taskId, { lastReportedStatus: status });
  }

  loadActive(): TaskRecord[] {
    return [...this.rows.values()]
      .filter((r) => isActive(r.status))
      .sort((a, b) => a.seq - b.seq)
      .map((r) => ({ ...r }));
  }

  list(query: TaskQuery): { tasks: TaskRecord[]; total: number } {
    const matching = [...this.rows.values()]
      .filter((r) => query.status === undefined || r.status === query.status)
      .sort((a, b) => b.receivedAt - a.receivedAt || b.seq - a.seq);
    return {
      tasks: matching.slice(query.offset, query.offset + query.limit).map((r) => ({ ...r })),
      total: matching.length,
    };
  }

  countByStatus(): Record<TaskStatus, number> {
    const counts: Record<TaskStatus, number> = {
      pending: 0,
      dispatched: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
      lost: 0,
    };
    for (const r of this.rows.values()) counts[r.status] += 1;
    return counts;
  }

  prune(keep: number): number {
    const ended = [...this.rows.values()]
      .filter((r) => !isActive(r.status))
      .sort((a, b) => (b.completedAt ?? 0) - (a.completedAt ?? 0) || b.seq - a.seq);
    const gone = ended.slice(Math.max(0, keep));
    for (const r of gone) {
      this.rows.delete(r.taskId);
      this.held.delete(r.taskId);
    }
    return gone.length;
  }

  holdCommand(taskId: string, frame: string): void {
    const list = this.held.get(taskId) ?? [];
    list.push(frame);
    this.held.set(taskId, list);
  }

  takeHeldCommands(taskId: string): string[] {
    const list = this.held.get(taskId) ?? [];
    this.held.delete(taskId);
    return list;
  }

  heldCommands(taskId: string): string[] {
    return [...(this.held.get(taskId) ?? [])];
  }
}

export class MemoryOutboxStore implements OutboxStore {
  readonly entries: OutboxEntry[] = [];
  private nextId = 1;

  append(frame: string, critical: boolean): void {
    this.entries.push({ id: this.nextId++, frame, bytes: Buffer.byteLength(frame), critical });
  }

  peek(limit: number): OutboxEntry[] {
    return this.entries.slice(0, limit).map((e) => ({ ...e }));
  }

  deleteThrough(id: number): void {
    while (this.entries.length > 0 && (this.entries[0] as OutboxEntry).id <= id)
      this.entries.shift();
  }

  dropOldestNonCritical(bytes: number): { frames: number; bytes: number } {
    let frames = 0;
    let freed = 0;
    for (let i = 0; i < this.entries.length && freed < bytes; ) {
      const e = this.entries[i] as OutboxEntry;
      if (e.critical) {
        i++;
        continue;
      }
      this.entries.splice(i, 1);
      frames++;
      freed += e.bytes;
    }
    return { frames, bytes: freed };
  }

  stats(): { frames: number; bytes: number } {
    return {
      frames: this.entries.length,
      bytes: this.entries.reduce((n, e) => n + e.bytes, 0),
    };
  }

  frames(): string[] {
    return this.entries.map((e) => e.frame);
  }
}

export class MemoryConnectionLogStore implements ConnectionLogStore {
  readonly rows: ConnectionLogEntry[] = [];

  insert(event: string, timestamp: number, details: string | null): void {
    this.rows.push({ id: this.rows.length + 1, event, timestamp, details });
  }

  list(limit: number): ConnectionLogEntry[] {
    return this.rows.slice(-limit).reverse();
  }
}

export class MemoryMetaStore implements MetaStore {
  readonly values = new Map<string, string>();

  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  set(key: string, value: string): void {
    this.values.set(key, value);
  }

  increment(key: string, by = 1): number {
    const next = Number(this.values.get(key) ?? "0") + by;
    this.values.set(key, String(next));
    return next;
  }
}

export interface MemoryStores extends Stores {
  tasks: MemoryTaskStore;
  outbox: MemoryOutboxStore;
  connectionLog: MemoryConnectionLogStore;
  meta: MemoryMetaStore;
}

export function createMemoryStores(): MemoryStores {
  return {
    tasks: new MemoryTaskStore(),
    outbox: new MemoryOutboxStore(),
    connectionLog: new MemoryConnectionLogStore(),
    meta: new MemoryMetaStore(),
    transaction: <T>(fn: () => T): T => fn(),
    afterCommit: (fn: () => void): void => fn(),
  };
}

// ---- small helpers ------------------------------------------------------------

/** A tiny deterministic PRNG (mulberry32): same seed, same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
