/**
 * The stores in memory: the same contract as the SQLite ones (tests run one
 * behaviour suite against both), for unit tests and the simulation. Writes go
 * through a Writer like the real ones, so a write batch can hold them back.
 */
import {
  ACTIVE_STATUSES,
  type BindingStore,
  type ConnectionLogEntry,
  type ConnectionLogOptions,
  type ConnectionLogStore,
  type MachineBinding,
  type MetaStore,
  type OutboxDrop,
  type OutboxEntry,
  type OutboxStore,
  type Stores,
  type TaskQuery,
  type TaskRecord,
  type TaskStatus,
  type TaskStore,
  type TaskSummary,
  zeroCountsByStatus,
} from "../core/ports.ts";
import {
  boundNullable,
  boundText,
  HISTORY_TEXT_MAX_BYTES,
  LOG_DETAILS_MAX_BYTES,
} from "../core/text-bound.ts";
import { reserveForSecurity } from "./log-listing.ts";
import type { WriteBatch, Writer } from "./write-batch.ts";

const isActive = (s: TaskStatus): boolean => ACTIVE_STATUSES.includes(s);

/** Applies each write at once; one that throws is told `dropped` and its error reaches the caller. */
export const immediateWriter: Writer = {
  write(apply, committed, dropped) {
    let result: ReturnType<typeof apply>;
    try {
      result = apply();
    } catch (err) {
      dropped?.(err);
      throw err;
    }
    committed?.(result);
  },
};

type PendingTask = Parameters<TaskStore["savePending"]>[0];

export class MemoryTaskStore implements TaskStore {
  readonly rows = new Map<string, TaskRecord>();
  private readonly held = new Map<string, string[]>();
  private seq = 0;
  private received = 0;

  constructor(private readonly writer: Writer = immediateWriter) {}

  get(taskId: string): TaskRecord | null {
    const row = this.rows.get(taskId);
    return row ? { ...row } : null;
  }

  savePending(task: PendingTask): void {
    this.writer.write(() => {
      const existing = this.rows.get(task.taskId);
      if (existing && isActive(existing.status)) return;
      this.rows.set(task.taskId, {
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
      });
      if (existing) this.held.delete(task.taskId);
      else this.received += 1;
    });
  }

  private update(taskId: string, patch: Partial<TaskRecord>): void {
    this.writer.write(() => {
      const row = this.rows.get(taskId);
      if (row) Object.assign(row, patch);
    });
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
    // Bounded as in the SQLite store (task-store.ts), so both keep the same text.
    const kept = boundNullable(error, HISTORY_TEXT_MAX_BYTES);
    this.writer.write(() => {
      const row = this.rows.get(taskId);
      if (row && isActive(row.status)) Object.assign(row, { status, completedAt: at, error: kept });
    });
  }

  setReportedStatus(taskId: string, status: string): void {
    this.update(taskId, { lastReportedStatus: boundText(status, HISTORY_TEXT_MAX_BYTES) });
  }

  loadActive(): TaskRecord[] {
    return [...this.rows.values()]
      .filter((r) => isActive(r.status))
      .sort((a, b) => a.seq - b.seq)
      .map((r) => ({ ...r }));
  }

  list(query: TaskQuery): { tasks: TaskSummary[]; total: number } {
    const matching = [...this.rows.values()]
      .filter((r) => query.status === undefined || r.status === query.status)
      .sort((a, b) => b.receivedAt - a.receivedAt || b.seq - a.seq);
    return {
      tasks: matching
        .slice(query.offset, query.offset + query.limit)
        .map(({ spawnFrame: _spawnFrame, ...r }) => r),
      total: matching.length,
    };
  }

  countByStatus(): Record<TaskStatus, number> {
    const counts = zeroCountsByStatus();
    for (const r of this.rows.values()) counts[r.status] += 1;
    return counts;
  }

  totalReceived(): number {
    return this.received;
  }

  prune(keep: number, maxRows = Number.MAX_SAFE_INTEGER, pruned?: (deleted: number) => void): void {
    this.writer.write(() => {
      const ended = [...this.rows.values()]
        .filter((r) => !isActive(r.status))
        .sort((a, b) => (a.completedAt ?? 0) - (b.completedAt ?? 0) || a.seq - b.seq);
      const gone = ended.slice(0, Math.min(maxRows, Math.max(0, ended.length - Math.max(0, keep))));
      for (const r of gone) {
        this.rows.delete(r.taskId);
        this.held.delete(r.taskId);
      }
      return gone.length;
    }, pruned);
  }

  holdCommand(taskId: string, frame: string): void {
    this.writer.write(() => {
      const list = this.held.get(taskId) ?? [];
      list.push(frame);
      this.held.set(taskId, list);
    });
  }

  dropHeldCommands(taskId: string): void {
    this.writer.write(() => this.held.delete(taskId));
  }

  heldCommands(taskId: string): string[] {
    return [...(this.held.get(taskId) ?? [])];
  }
}

export class MemoryOutboxStore implements OutboxStore {
  readonly entries: OutboxEntry[] = [];
  private nextId = 1;

  constructor(private readonly writer: Writer = immediateWriter) {}

  private bytes(): number {
    return this.entries.reduce((n, e) => n + e.bytes, 0);
  }

  append(
    frame: string,
    critical: boolean,
    maxBytes: number,
    stored?: (drop: OutboxDrop | null) => void,
  ): void {
    // Dropped as a bug: told like a frame stored, so its caller stops waiting (see outbox-store.ts).
    const dropped = stored && (() => stored(null));
    this.writer.write(
      () => {
        const bytes = Buffer.byteLength(frame);
        let total = this.bytes();
        let frames = 0;
        let freed = 0;
        for (let i = 0; i < this.entries.length && total + bytes > maxBytes; ) {
          const e = this.entries[i] as OutboxEntry;
          if (e.critical) {
            i++;
            continue;
          }
          this.entries.splice(i, 1);
          frames++;
          freed += e.bytes;
          total -= e.bytes;
        }
        const refused = !critical && total + bytes > maxBytes;
        if (!refused) this.entries.push({ id: this.nextId++, frame, bytes, critical });
        return frames > 0 || refused
          ? { frames, bytes: freed, refused: refused ? bytes : 0 }
          : null;
      },
      stored,
      dropped,
    );
  }

  peekAfter(afterId: number, limit: number): OutboxEntry[] {
    return this.entries
      .filter((e) => e.id > afterId)
      .slice(0, limit)
      .map((e) => ({ ...e }));
  }

  deleteThrough(id: number): void {
    (this.writer.writeFreeing ?? this.writer.write).call(this.writer, () => {
      while (this.entries.length > 0 && (this.entries[0] as OutboxEntry).id <= id)
        this.entries.shift();
    });
  }

  stats(): { frames: number; bytes: number } {
    return { frames: this.entries.length, bytes: this.bytes() };
  }

  frames(): string[] {
    return this.entries.map((e) => e.frame);
  }
}

type MemoryLogRow = ConnectionLogEntry & { security: boolean; aggregateKey: string | null };

export class MemoryConnectionLogStore implements ConnectionLogStore {
  readonly rows: MemoryLogRow[] = [];
  private nextId = 1;

  constructor(private readonly writer: Writer = immediateWriter) {}

  insert(
    event: string,
    timestamp: number,
    details: string | null,
    options?: ConnectionLogOptions,
  ): void {
    const kept = boundNullable(details, LOG_DETAILS_MAX_BYTES);
    const aggregateKey = options?.replaces ?? null;
    const security = options?.security === true;
    this.writer.write(() => {
      const replaced =
        aggregateKey === null ? -1 : this.rows.findIndex((r) => r.aggregateKey === aggregateKey);
      if (replaced >= 0) this.rows.splice(replaced, 1);
      this.rows.push({
        id: this.nextId++,
        event,
        timestamp,
        details: kept,
        security,
        aggregateKey,
      });
    });
  }

  /** As the SQLite store lists (log-listing.ts), without its retention: memory keeps every row. */
  list(limit: number): ConnectionLogEntry[] {
    const n = Math.max(0, Math.trunc(limit));
    const newest = this.rows.slice(Math.max(0, this.rows.length - n)).reverse();
    const security = this.rows
      .filter((r) => r.security)
      .reverse()
      .slice(0, Math.floor(n / 2));
    return reserveForSecurity(newest, security, n).map(({ id, event, timestamp, details }) => ({
      id,
      event,
      timestamp,
      details,
    }));
  }
}

export class MemoryMetaStore implements MetaStore {
  readonly values = new Map<string, string>();

  constructor(private readonly writer: Writer = immediateWriter) {}

  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  set(key: string, value: string): void {
    this.writer.write(() => this.values.set(key, value));
  }
}

export class MemoryBindingStore implements BindingStore {
  readonly rows = new Map<string, MachineBinding>();

  constructor(private readonly writer: Writer = immediateWriter) {}

  all(): MachineBinding[] {
    return [...this.rows.values()].map((b) => ({ ...b }));
  }

  bind(binding: MachineBinding): void {
    this.writer.write(() => this.rows.set(binding.machineId, { ...binding }));
  }

  release(machineId: string): void {
    this.writer.write(() => this.rows.delete(machineId));
  }
}

export interface MemoryStores extends Stores {
  tasks: MemoryTaskStore;
  outbox: MemoryOutboxStore;
  connectionLog: MemoryConnectionLogStore;
  meta: MemoryMetaStore;
  bindings: MemoryBindingStore;
}

/**
 * Memory stores; with a batch, writes wait for its flush like the SQLite ones.
 * (A memory "transaction" cannot roll back, so a batch over memory stores may
 * only fail before it applies anything: see the simulation's fault driver.)
 */
export function createMemoryStores(batch?: WriteBatch): MemoryStores {
  const writer = batch ?? immediateWriter;
  return {
    tasks: new MemoryTaskStore(writer),
    outbox: new MemoryOutboxStore(writer),
    connectionLog: new MemoryConnectionLogStore(writer),
    meta: new MemoryMetaStore(writer),
    bindings: new MemoryBindingStore(writer),
    afterCommit: batch ? batch.afterCommit : (fn) => fn(),
    storage: batch ? () => batch.status : () => ({ ok: true }),
  };
}
