/**
 * Group commit with write-behind (docs/protocol.md "Storage failures").
 *
 * Stores never touch the database directly: each write is an operation handed
 * to `write()` (through a StoreWriter, store-writer.ts, for the SQLite stores:
 * it is the only way they have to run a write statement). The turn's operations are applied, in order, in one
 * transaction once the turn's I/O callbacks have run (setImmediate), and what
 * waited for them (`afterCommit`: every frame the relay sends) runs after the
 * COMMIT. One commit carries every write a burst of frames caused.
 *
 * When the transaction fails (disk full, I/O error, a locked or read-only
 * file) it is rolled back, the stores reload what they cache from the
 * committed state, and the operations stay queued, in order, to be applied
 * again after a short backoff until a commit succeeds. Nothing the relay
 * decided is lost or half-applied: the core's in-memory state already holds
 * it, and the database gets exactly the same operations once it can. Nothing
 * that depends on those writes leaves the process meanwhile.
 *
 * Operations must give the same result when applied again on the same
 * committed state (they are plain SQL on their arguments); whatever they
 * report outward goes through `committed`, called once, after the COMMIT.
 */
import type { Clock, TimerHandle } from "../core/clock.ts";
import type { StorageStatus } from "../core/ports.ts";
import { storageErrorCode, type TransactionDriver } from "./sqlite-transactions.ts";

// Whoever builds a batch builds its driver too: one module to import them from.
export {
  sqliteTransactions,
  storageErrorCode,
  type TransactionDriver,
} from "./sqlite-transactions.ts";

/** How the stores write: the only path to the database for a change. */
export interface Writer {
  /**
   * Queues `apply` for the turn's transaction; `committed` is told its result
   * once that transaction has committed (never for an attempt rolled back).
   * When `apply` throws an error that is not a storage failure (a bug), the
   * write is dropped, never applied: `dropped` is told instead of `committed`,
   * so that whoever waits for its result stops waiting.
   */
  write<T>(apply: () => T, committed?: (result: T) => void, dropped?: (err: unknown) => void): void;
  /**
   * A write that only deletes rows already delivered (sent outbox rows). It
   * commutes with every other queued write, so while commits fail for lack of
   * space it is committed ahead of them, on its own, to make room.
   */
  writeFreeing?<T>(apply: () => T, committed?: (result: T) => void): void;
}

/**
 * A Writer without a batch nor a transaction (the memory stores alone): applies
 * each write at once; one that throws is told `dropped` and its error
 * reaches the caller.
 */
export const directWriter: Writer = {
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

export interface WriteBatch extends Writer {
  /** Runs `fn` once every write queued so far is committed (at once when none is waiting). */
  afterCommit(fn: () => void): void;
  /** Applies and commits what is queued, now. True when nothing is left uncommitted. */
  flush(): boolean;
  /** Called by a store after a rollback: reload what it caches from the committed state. */
  onRollback(reload: () => void): void;
  readonly status: StorageStatus;
  /** Stops the retry timer (shutdown); queued writes stay queued. */
  stop(): void;
}

export interface WriteBatchOptions {
  clock: Clock;
  /** Runs `fn` at the end of the current turn. */
  schedule?: (fn: () => void) => void;
  /** Storage failing, or healthy again: the relay pauses and resumes its inputs. */
  onStatusChange?: (status: StorageStatus) => void;
  /** A write that failed for a reason other than storage (a bug): dropped, reported. */
  onBug?: (err: unknown) => void;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

interface Pending {
  apply: () => unknown;
  committed: ((result: unknown) => void) | undefined;
  dropped: ((err: unknown) => void) | undefined;
  result: unknown;
  /** Set once the operation threw a bug: skipped from then on, `dropped` told after the commit. */
  bug: { err: unknown } | null;
  /** See Writer.writeFreeing. */
  frees: boolean;
}

const HEALTHY: StorageStatus = { ok: true };

export function createWriteBatch(tx: TransactionDriver, opts: WriteBatchOptions): WriteBatch {
  const batch = new GroupCommit(tx, opts);
  // Plain functions, not methods: the stores and the relay pass them around detached.
  return {
    write: (apply, committed, dropped) =>
      batch.enqueue(apply as () => unknown, committed as Pending["committed"], dropped, false),
    writeFreeing: (apply, committed) =>
      batch.enqueue(apply, committed as Pending["committed"], undefined, true),
    afterCommit: (fn) => batch.afterCommit(fn),
    flush: () => batch.flush(),
    onRollback: (reload) => batch.onRollback(reload),
    get status() {
      return batch.status();
    },
    stop: () => batch.stop(),
  };
}

class GroupCommit {
  private queue: Pending[] = [];
  private waiting: Array<() => void> = [];
  private scheduled = false;
  private current: StorageStatus = HEALTHY;
  private retryTimer: TimerHandle | null = null;
  private retries = 0;
  private stopped = false;
  /** Telling what waited for a commit: an afterCommit made meanwhile waits its turn. */
  private delivering = false;
  private readonly reloads: Array<() => void> = [];
  private readonly schedule: (fn: () => void) => void;
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly tx: TransactionDriver,
    private readonly opts: WriteBatchOptions,
  ) {
    this.schedule = opts.schedule ?? setImmediate;
    this.baseMs = opts.retryBaseMs ?? 50;
    this.maxMs = opts.retryMaxMs ?? 2000;
  }

  enqueue(
    apply: () => unknown,
    committed: Pending["committed"],
    dropped: Pending["dropped"],
    frees: boolean,
  ): void {
    const op: Pending = { apply, committed, dropped, result: undefined, bug: null, frees };
    this.queue.push(op);
    // While failing, the retry timer decides when to try again.
    if (this.scheduled || !this.current.ok) return;
    this.scheduled = true;
    this.schedule(() => this.flush());
  }

  afterCommit(fn: () => void): void {
    if (this.delivering || this.queue.length > 0 || !this.current.ok) this.waiting.push(fn);
    else fn();
  }

  onRollback(reload: () => void): void {
    this.reloads.push(reload);
  }

  status(): StorageStatus {
    const s = this.current;
    return s.ok ? s : { ...s, pendingWrites: this.live() };
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) this.opts.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  flush(): boolean {
    this.scheduled = false;
    if (this.retryTimer !== null) {
      this.opts.clock.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    if (!this.current.ok) this.commitFreeingFirst();
    while (this.queue.length > 0) {
      const outcome = this.applyAll();
      if (outcome.ok) break;
      const code = storageErrorCode(outcome.err);
      if (code === null && outcome.op !== null) {
        // One broken operation must not stall every other write: drop it, report it, go on.
        outcome.op.bug = { err: outcome.err };
        this.opts.onBug?.(outcome.err);
        continue;
      }
      this.failed(outcome.err, code ?? "SQLITE_ERROR");
      return false;
    }
    this.deliver();
    return true;
  }

  /** After a COMMIT: tells each write its result, then runs what waited for them, in call order. */
  private deliver(): void {
    const done = this.queue;
    const run = this.waiting;
    this.queue = [];
    this.waiting = [];
    this.retries = 0;
    // In call order: an afterCommit made by any of these callbacks runs after
    // the ones that were already waiting, never ahead of them.
    this.delivering = true;
    try {
      if (!this.current.ok) this.setStatus(HEALTHY);
      for (const op of done) {
        if (op.bug === null) op.committed?.(op.result);
        else op.dropped?.(op.bug.err);
      }
      for (const fn of run) fn();
      // Asked for meanwhile: due now unless the callbacks wrote something (then after its commit).
      while (this.waiting.length > 0 && this.queue.length === 0) {
        const next = this.waiting;
        this.waiting = [];
        for (const fn of next) fn();
      }
    } finally {
      this.delivering = false;
    }
  }

  private setStatus(next: StorageStatus): void {
    this.current = next;
    this.opts.onStatusChange?.(next);
  }

  private rollback(): void {
    this.tx.rollback();
    for (const reload of this.reloads) reload();
  }

  /**
   * Applies the queue in one transaction, the space-freeing writes first (see
   * commitFreeingFirst); on failure says which operation failed (null: BEGIN/COMMIT).
   */
  private applyAll(): { ok: true } | { ok: false; err: unknown; op: Pending | null } {
    let current: Pending | null = null;
    try {
      this.tx.begin();
      for (const freeing of [true, false]) {
        for (const op of this.queue) {
          if (op.frees !== freeing || op.bug !== null) continue;
          current = op;
          op.result = op.apply();
        }
      }
      current = null;
      this.tx.commit();
      return { ok: true };
    } catch (err) {
      this.rollback();
      return { ok: false, err, op: current };
    }
  }

  /**
   * Space-freeing writes delete only rows already delivered, older than any
   * queued append: applied ahead of the other writes they change nothing but
   * the room the others find (and an append's size limit never drops a row
   * that was already sent). A retry after a failure commits them on their
   * own first, then folds the WAL back: what was sent makes room for what waits.
   */
  private commitFreeingFirst(): void {
    const freeing = this.queue.filter((op) => op.frees && op.bug === null);
    if (freeing.length === 0) return;
    try {
      this.tx.begin();
      for (const op of freeing) op.apply();
      this.tx.commit();
    } catch {
      this.rollback();
      return;
    }
    this.queue = this.queue.filter((op) => !freeing.includes(op));
    this.tx.reclaim?.();
  }

  private live(): number {
    return this.queue.reduce((n, op) => (op.bug === null ? n + 1 : n), 0);
  }

  /** A commit failed for the storage: report it, then retry after a growing, capped delay. */
  private failed(err: unknown, code: string): void {
    this.retries += 1;
    const message = err instanceof Error ? err.message : String(err);
    const was = this.current;
    this.setStatus({
      ok: false,
      code,
      error: message,
      since: was.ok ? this.opts.clock.now() : was.since,
      attempts: this.retries,
      pendingWrites: this.live(),
    });
    if (this.stopped) return;
    if (code.startsWith("SQLITE_FULL")) this.tx.reclaim?.();
    const delay = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.retries - 1, 16));
    this.retryTimer = this.opts.clock.setTimeout(() => {
      this.retryTimer = null;
      this.flush();
    }, delay);
  }
}
