/**
 * The stores in memory: the same contract as the SQLite ones (tests run one
 * behaviour suite against both), for unit tests and the simulation. Writes go
 * through a Writer like the real ones, so a write batch can hold them back.
 */
import type {
  BindingStore,
  ConnectionLogEntry,
  ConnectionLogOptions,
  ConnectionLogStore,
  MachineBinding,
  MetaStore,
  OutboxDrop,
  OutboxEntry,
  OutboxStore,
  Stores,
  TaskEvent,
  TaskEventStore,
} from "../core/ports.ts";
import { boundNullable, LOG_DETAILS_MAX_BYTES } from "../core/text-bound.ts";
import { reserveForSecurity } from "./log-listing.ts";
import { MemoryTaskStore } from "./memory-task-store.ts";
import { directWriter, type WriteBatch, type Writer } from "./write-batch.ts";

// Beside the other memory stores for whoever imports them all from here.
export { MemoryTaskStore } from "./memory-task-store.ts";

export class MemoryOutboxStore implements OutboxStore {
  readonly entries: OutboxEntry[] = [];
  private nextId = 1;
  /** Entries up to this id were sent: not counted, deleted by the next append (markSent). */
  private sentThrough = 0;
  private deletedThrough = 0;

  constructor(private readonly writer: Writer = directWriter) {}

  /** The entries still held for the server. */
  private held(): OutboxEntry[] {
    return this.entries.filter((e) => e.id > this.sentThrough);
  }

  private bytes(): number {
    return this.held().reduce((n, e) => n + e.bytes, 0);
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
        // The sent entries' delete rides on the append, as in the SQLite store.
        if (this.deletedThrough < this.sentThrough)
          this.deleted(this.deleteThrough(this.sentThrough));
        const bytes = Buffer.byteLength(frame);
        let total = this.bytes();
        let frames = 0;
        let freed = 0;
        for (let i = 0; i < this.entries.length && total + bytes > maxBytes; ) {
          const e = this.entries[i] as OutboxEntry;
          if (e.critical || e.id <= this.sentThrough) {
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

  markSent(id: number): void {
    if (id <= this.sentThrough) return;
    this.sentThrough = id;
  }

  deleteSent(): boolean {
    if (this.deletedThrough >= this.sentThrough) return false;
    const id = this.sentThrough;
    const w = this.writer;
    if (w.writeFreeing) w.writeFreeing(() => this.deleteThrough(id), this.deleted);
    else w.write(() => this.deleteThrough(id), this.deleted);
    return true;
  }

  private deleteThrough(id: number): number {
    while (this.entries.length > 0 && (this.entries[0] as OutboxEntry).id <= id)
      this.entries.shift();
    return id;
  }

  private readonly deleted = (id: number): void => {
    this.deletedThrough = Math.max(this.deletedThrough, id);
  };

  stats(): { frames: number; bytes: number } {
    return { frames: this.held().length, bytes: this.bytes() };
  }

  /** Every row the store holds, sent ones whose delete has not come yet included. */
  frames(): string[] {
    return this.entries.map((e) => e.frame);
  }

  /** The rows not marked sent: what the outbox still holds for the server. */
  unsent(): string[] {
    return this.entries.filter((e) => e.id > this.sentThrough).map((e) => e.frame);
  }
}

export class MemoryTaskEventStore implements TaskEventStore {
  readonly byTask = new Map<string, TaskEvent[]>();

  constructor(private readonly writer: Writer = directWriter) {}

  append(taskId: string, event: TaskEvent, evict: number | null): void {
    this.writer.write(() => {
      const list = this.byTask.get(taskId) ?? [];
      // Appended in order of n, as the timeline numbers them.
      list.push({ ...event });
      this.byTask.set(taskId, evict === null ? list : list.filter((e) => e.n !== evict));
    });
  }

  list(taskId: string): TaskEvent[] {
    return (this.byTask.get(taskId) ?? []).map((e) => ({ ...e }));
  }

  last(taskId: string): TaskEvent | null {
    const e = this.byTask.get(taskId)?.at(-1);
    return e ? { ...e } : null;
  }

  /** The task was deleted or started again (MemoryTaskStore calls it inside its write). */
  forget(taskId: string): void {
    this.byTask.delete(taskId);
  }
}

type MemoryLogRow = ConnectionLogEntry & { security: boolean; aggregateKey: string | null };

export class MemoryConnectionLogStore implements ConnectionLogStore {
  readonly rows: MemoryLogRow[] = [];
  private nextId = 1;

  constructor(private readonly writer: Writer = directWriter) {}

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

  constructor(private readonly writer: Writer = directWriter) {}

  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  set(key: string, value: string): void {
    this.writer.write(() => this.values.set(key, value));
  }
}

export class MemoryBindingStore implements BindingStore {
  readonly rows = new Map<string, MachineBinding>();

  constructor(private readonly writer: Writer = directWriter) {}

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
  taskEvents: MemoryTaskEventStore;
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
  const writer = batch ?? directWriter;
  const taskEvents = new MemoryTaskEventStore(writer);
  return {
    tasks: new MemoryTaskStore(writer, taskEvents),
    taskEvents,
    outbox: new MemoryOutboxStore(writer),
    connectionLog: new MemoryConnectionLogStore(writer),
    meta: new MemoryMetaStore(writer),
    bindings: new MemoryBindingStore(writer),
    afterCommit: batch ? batch.afterCommit : (fn) => fn(),
    storage: batch ? () => batch.status : () => ({ ok: true }),
  };
}
