/**
 * Group commit with write-behind (docs/protocol.md "Storage failures").
 *
 * Stores never touch the database directly: each write is an operation handed
 * to `write()`. The turn's operations are applied, in order, in one
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
import type { Database } from "bun:sqlite";
import type { Clock, TimerHandle } from "../core/clock.ts";
import type { StorageStatus } from "../core/ports.ts";

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
  writeFreeing?(apply: () => void): void;
}

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

/**
 * The transaction the batch applies its operations in. SQLite's (below) is
 * the real one; the simulation wraps it to make commits fail on purpose.
 */
export interface TransactionDriver {
  begin(): void;
  commit(): void;
  /** Undoes an open transaction; harmless when SQLite already rolled it back. */
  rollback(): void;
  /** After a full disk: give back what the database can (the WAL beyond the main file). */
  reclaim?(): void;
}

export function sqliteTransactions(sqlite: Database): TransactionDriver {
  return {
    begin: () => sqlite.run("BEGIN"),
    commit: () => sqlite.run("COMMIT"),
    rollback: () => {
      try {
        if (sqlite.inTransaction) sqlite.run("ROLLBACK");
      } catch {
        // SQLite already rolled the transaction back itself.
      }
    },
    reclaim: () => {
      try {
        // The WAL keeps every page committed since the last checkpoint: folding it into the
        // main file and truncating it can free as much as the data itself takes.
        sqlite.run("PRAGMA wal_checkpoint(TRUNCATE)");
      } catch {
        // No room even for that: the retry will tell.
      }
    },
  };
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

/**
 * SQLite result codes that say the storage cannot take the write now; any
 * other error from an operation is a bug in that operation.
 */
const STORAGE_CODES = [
  "SQLITE_FULL",
  "SQLITE_IOERR",
  "SQLITE_BUSY",
  "SQLITE_LOCKED",
  "SQLITE_READONLY",
  "SQLITE_CANTOPEN",
  "SQLITE_NOMEM",
  "SQLITE_PROTOCOL",
  "SQLITE_CORRUPT",
  "SQLITE_NOTADB",
  "SQLITE_PERM",
];

/** The SQLite code of a storage failure (e.g. SQLITE_FULL, SQLITE_IOERR_WRITE), or null for a bug. */
export function storageErrorCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return null;
  return STORAGE_CODES.some((c) => code === c || code.startsWith(`${c}_`)) ? code : null;
}

const HEALTHY: StorageStatus = { ok: true };

export function createWriteBatch(tx: TransactionDriver, opts: WriteBatchOptions): WriteBatch {
  const { clock } = opts;
  const schedule = opts.schedule ?? setImmediate;
  const baseMs = opts.retryBaseMs ?? 50;
  const maxMs = opts.retryMaxMs ?? 2000;
  let queue: Pending[] = [];
  let waiting: Array<() => void> = [];
  let scheduled = false;
  let status: StorageStatus = HEALTHY;
  let retryTimer: TimerHandle | null = null;
  let retries = 0;
  let stopped = false;
  /** Telling what waited for a commit: an afterCommit made meanwhile waits its turn. */
  let delivering = false;
  const reloads: Array<() => void> = [];

  const setStatus = (next: StorageStatus): void => {
    status = next;
    opts.onStatusChange?.(next);
  };

  const rollback = (): void => {
    tx.rollback();
    for (const reload of reloads) reload();
  };

  /** Applies the queue in one transaction; on failure says which operation failed (-1: BEGIN/COMMIT). */
  /**
   * Applies the queue in one transaction, the space-freeing writes first (see
   * commitFreeingFirst); on failure says which operation failed (null: BEGIN/COMMIT).
   */
  const applyAll = (): { ok: true } | { ok: false; err: unknown; op: Pending | null } => {
    let current: Pending | null = null;
    try {
      tx.begin();
      for (const freeing of [true, false]) {
        for (const op of queue) {
          if (op.frees !== freeing || op.bug !== null) continue;
          current = op;
          op.result = op.apply();
        }
      }
      current = null;
      tx.commit();
      return { ok: true };
    } catch (err) {
      rollback();
      return { ok: false, err, op: current };
    }
  };

  /**
   * Space-freeing writes delete only rows already delivered, older than any
   * queued append: applied ahead of the other writes they change nothing but
   * the room the others find (and an append's size limit never drops a row
   * that was already sent). A retry after a failure commits them on their
   * own first, then folds the WAL back: what was sent makes room for what waits.
   */
  const commitFreeingFirst = (): void => {
    const freeing = queue.filter((op) => op.frees && op.bug === null);
    if (freeing.length === 0) return;
    try {
      tx.begin();
      for (const op of freeing) op.apply();
      tx.commit();
    } catch {
      rollback();
      return;
    }
    queue = queue.filter((op) => !freeing.includes(op));
    tx.reclaim?.();
  };

  const live = (): number => queue.reduce((n, op) => (op.bug === null ? n + 1 : n), 0);

  const failed = (err: unknown, code: string): void => {
    retries += 1;
    const message = err instanceof Error ? err.message : String(err);
    setStatus({
      ok: false,
      code,
      error: message,
      since: status.ok ? clock.now() : status.since,
      attempts: retries,
      pendingWrites: live(),
    });
    if (stopped) return;
    if (code.startsWith("SQLITE_FULL")) tx.reclaim?.();
    const delay = Math.min(maxMs, baseMs * 2 ** Math.min(retries - 1, 16));
    retryTimer = clock.setTimeout(() => {
      retryTimer = null;
      flush();
    }, delay);
  };

  const flush = (): boolean => {
    scheduled = false;
    if (retryTimer !== null) {
      clock.clearTimeout(retryTimer);
      retryTimer = null;
    }
    if (!status.ok) commitFreeingFirst();
    while (queue.length > 0) {
      const outcome = applyAll();
      if (outcome.ok) break;
      const code = storageErrorCode(outcome.err);
      if (code === null && outcome.op !== null) {
        // One broken operation must not stall every other write: drop it, report it, go on.
        outcome.op.bug = { err: outcome.err };
        opts.onBug?.(outcome.err);
        continue;
      }
      failed(outcome.err, code ?? "SQLITE_ERROR");
      return false;
    }
    const done = queue;
    const run = waiting;
    queue = [];
    waiting = [];
    retries = 0;
    // In call order: an afterCommit made by any of these callbacks runs after
    // the ones that were already waiting, never ahead of them.
    delivering = true;
    try {
      if (!status.ok) setStatus(HEALTHY);
      for (const op of done) {
        if (op.bug === null) op.committed?.(op.result);
        else op.dropped?.(op.bug.err);
      }
      for (const fn of run) fn();
      // Asked for meanwhile: due now unless the callbacks wrote something (then after its commit).
      while (waiting.length > 0 && queue.length === 0) {
        const next = waiting;
        waiting = [];
        for (const fn of next) fn();
      }
    } finally {
      delivering = false;
    }
    return true;
  };

  return {
    write(apply, committed, dropped) {
      queue.push({
        apply,
        committed: committed as ((result: unknown) => void) | undefined,
        dropped,
        result: undefined,
        bug: null,
        frees: false,
      });
      // While failing, the retry timer decides when to try again.
      if (scheduled || !status.ok) return;
      scheduled = true;
      schedule(flush);
    },
    writeFreeing(apply) {
      this.write(apply);
      (queue.at(-1) as Pending).frees = true;
    },
    afterCommit(fn) {
      if (delivering || queue.length > 0 || !status.ok) waiting.push(fn);
      else fn();
    },
    flush,
    onRollback(reload) {
      reloads.push(reload);
    },
    get status() {
      return status.ok ? status : { ...status, pendingWrites: live() };
    },
    stop() {
      stopped = true;
      if (retryTimer !== null) clock.clearTimeout(retryTimer);
      retryTimer = null;
    },
  };
}

/**
 * A writer without batching (tools, tests): each operation is its own
 * transaction, committed before `write` returns. An operation that throws is
 * rolled back, told `dropped`, and its error reaches the caller.
 */
export function createImmediateWriter(sqlite: Database): Writer {
  const inTransaction = sqlite.transaction((apply: () => unknown) => apply());
  return {
    write(apply, committed, dropped) {
      let result: ReturnType<typeof apply>;
      try {
        result = inTransaction(apply) as ReturnType<typeof apply>;
      } catch (err) {
        dropped?.(err);
        throw err;
      }
      committed?.(result);
    },
  };
}
