import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/core/manual-clock.ts";
import type { StorageStatus, Stores } from "../../src/core/ports.ts";
import { createStores, openDatabase, type RelayDatabase } from "../../src/store/database.ts";
import { createMemoryStores } from "../../src/store/memory-stores.ts";
import {
  createWriteBatch,
  sqliteTransactions,
  type TransactionDriver,
  type WriteBatch,
} from "../../src/store/write-batch.ts";

/** A fresh directory, removed when the `using` scope ends. */
export function tempDir(): { path: string; file(name: string): string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), "relay-store-"));
  return {
    path,
    file: (name) => join(path, name),
    [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }),
  };
}

export type Opened = RelayDatabase & { stores: Stores };

/**
 * A database with the real migrations and its stores, without a write batch
 * (each write is its own transaction, committed before it returns); closes with `using`.
 */
export function openStores(path = ":memory:", logKeep = 100): Opened {
  const handle = openDatabase(path);
  return { ...handle, stores: createStores(handle.db, handle.sqlite, { logKeep }) };
}

export function pending(taskId: string, receivedAt: number, taskName = `name-${taskId}`) {
  return { taskId, taskName, spawnFrame: `{"type":"spawn","taskId":"${taskId}"}`, receivedAt };
}

/** An outbox budget nothing in a test reaches. */
export const NO_LIMIT = Number.MAX_SAFE_INTEGER;

// ---- one behaviour suite, two implementations ---------------------------------

/** Stores under test, whichever implementation holds them. */
export interface StoresUnderTest extends Disposable {
  stores: Stores;
}

export interface Backend {
  name: "SQLite" | "memory";
  open(): StoresUnderTest;
}

/** The stores run the same behaviour suite on SQLite and in memory. */
export const BACKENDS: readonly Backend[] = [
  { name: "SQLite", open: () => openStores() },
  {
    name: "memory",
    open: () => ({ stores: createMemoryStores(), [Symbol.dispose]: () => {} }),
  },
];

// ---- SQLite behind a write batch, driven by hand --------------------------------

/** A storage error as bun:sqlite raises one (the `code` is what the batch looks at). */
export function storageError(code: string, message = "database or disk is full"): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * SQLite's transactions, with COMMIT made to fail on purpose: `failCommits`
 * commits in a row throw `failWith` (the transaction stays open, as after a
 * real failed COMMIT, and the batch rolls it back).
 */
export interface FaultyTransactions extends TransactionDriver {
  failCommits: number;
  failWith: () => Error;
  /** COMMITs tried, failed or not. */
  commits: number;
}

export function faultyTransactions(sqlite: Database): FaultyTransactions {
  const real = sqliteTransactions(sqlite);
  const driver: FaultyTransactions = {
    failCommits: 0,
    failWith: () => storageError("SQLITE_FULL"),
    commits: 0,
    begin: () => real.begin(),
    commit: () => {
      driver.commits += 1;
      if (driver.failCommits > 0) {
        driver.failCommits -= 1;
        throw driver.failWith();
      }
      real.commit();
    },
    rollback: () => real.rollback(),
  };
  return driver;
}

export interface Batched extends Opened {
  batch: WriteBatch;
  tx: FaultyTransactions;
  clock: ManualClock;
  /** Every status the batch reported, in order. */
  statuses: StorageStatus[];
  /** Every error the batch dropped as a bug. */
  bugs: unknown[];
  /** Flushes scheduled for the end of the turn and not run yet. */
  readonly scheduled: number;
  /** Ends the turn: runs the flushes the batch scheduled. */
  endTurn(): void;
}

export interface BatchedOptions {
  path?: string;
  logKeep?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/**
 * SQLite stores behind a write batch whose flushes run only when the test
 * ends the turn, on a manual clock, with a COMMIT that can be made to fail.
 */
export function openBatched(opts: BatchedOptions = {}): Batched {
  const handle = openDatabase(opts.path ?? ":memory:");
  const clock = new ManualClock();
  const tx = faultyTransactions(handle.sqlite);
  const statuses: StorageStatus[] = [];
  const bugs: unknown[] = [];
  const turn: Array<() => void> = [];
  const batch = createWriteBatch(tx, {
    clock,
    schedule: (fn) => turn.push(fn),
    onStatusChange: (s) => statuses.push(s),
    onBug: (err) => bugs.push(err),
    ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}),
    ...(opts.retryMaxMs !== undefined ? { retryMaxMs: opts.retryMaxMs } : {}),
  });
  const stores = createStores(handle.db, handle.sqlite, { logKeep: opts.logKeep ?? 100, batch });
  const close = () => {
    batch.stop();
    handle.close();
  };
  return {
    ...handle,
    close,
    [Symbol.dispose]: close,
    stores,
    batch,
    tx,
    clock,
    statuses,
    bugs,
    get scheduled() {
      return turn.length;
    },
    endTurn() {
      for (const fn of turn.splice(0)) fn();
    },
  };
}

/** One row of a query, as a plain object. */
export function row<T = Record<string, unknown>>(sqlite: Database, sql: string): T {
  return sqlite.query(sql).get() as T;
}

/** Every row of a query. */
export function rows<T = Record<string, unknown>>(sqlite: Database, sql: string): T[] {
  return sqlite.query(sql).all() as T[];
}
