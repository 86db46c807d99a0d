/**
 * Opening the database and wiring the repositories. We own the `Database` and
 * its PRAGMAs (drizzle leaves them to us); migrations come from the bundle, not
 * the filesystem, so the compiled binary needs nothing beside it.
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { drizzle } from "drizzle-orm/bun-sqlite";
import type { Stores } from "../core/ports.ts";
import { createBindingStore } from "./binding-store.ts";
import { createConnectionLogStore } from "./connection-log-store.ts";
import { createMetaStore } from "./meta-store.ts";
import { runMigrations } from "./migrations.ts";
import { createOutboxStore } from "./outbox-store.ts";
import type { RelayDb } from "./relay-db.ts";
import * as schema from "./schema.ts";
import { createImmediateWriter, createStoreWriter, storeReader } from "./store-writer.ts";
import { createTaskEventStore } from "./task-event-store.ts";
import { createTaskStore } from "./task-store.ts";
import type { WriteBatch } from "./write-batch.ts";

export interface RelayDatabase {
  db: RelayDb;
  sqlite: Database;
  /** Checkpoints the WAL into the main file and closes. Safe to call twice. */
  close(): void;
  [Symbol.dispose](): void;
}

export const MEMORY = ":memory:";

/** A relative path resolves against the working directory, never the binary's location. */
export function resolveDatabasePath(path: string, cwd: string = process.cwd()): string {
  return path === MEMORY || isAbsolute(path) ? path : resolve(cwd, path);
}

export interface OpenOptions {
  /** `full` fsyncs every commit: survives power loss, at a cost in write speed. */
  synchronous?: "normal" | "full";
}

export function openDatabase(path: string, opts: OpenOptions = {}): RelayDatabase {
  const file = resolveDatabasePath(path);
  // SQLite creates the file but not its directory ("unable to open database file").
  if (file !== MEMORY) mkdirSync(dirname(file), { recursive: true });
  // strict: a missing bind parameter throws instead of binding NULL.
  const sqlite = new Database(file, { create: true, strict: true });
  // Per connection, so on every open. :memory: answers "memory" to WAL; harmless.
  sqlite.run("PRAGMA journal_mode = WAL");
  // NORMAL in WAL mode: durable across process crashes; only an OS crash can lose the last commits.
  sqlite.run(`PRAGMA synchronous = ${opts.synchronous === "full" ? "FULL" : "NORMAL"}`);
  // Short: the relay is the only writer of its file, and a commit that waits on
  // someone else's lock blocks the event loop. Past it the commit fails and is
  // retried with backoff while the relay reports a storage problem.
  sqlite.run("PRAGMA busy_timeout = 250");
  // Off by default in SQLite; the ON DELETE CASCADE of held_commands depends on it.
  sqlite.run("PRAGMA foreign_keys = ON");
  const db = drizzle({ client: sqlite, schema });
  try {
    runMigrations(db);
  } catch (error) {
    sqlite.close();
    throw error;
  }
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    // Folds the WAL into the main file and empties it, so a copied .db is complete.
    // On a full disk or a failing device it may not: the WAL stays and is replayed at
    // the next open; the file is closed either way.
    try {
      sqlite.run("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // Nothing to do here: the next open recovers from the WAL.
    }
    // true: finalize the stores' prepared statements too. With the default (false)
    // Bun keeps the connection alive behind them (sqlite3_close_v2) and late writes
    // still succeed after "close".
    sqlite.close(true);
  };
  return { db, sqlite, close, [Symbol.dispose]: close };
}

export interface StoreOptions {
  /** How many connection-log rows to keep (the newest). */
  logKeep: number;
  /**
   * The write batch (write-batch.ts). Without one, each write is its own
   * transaction and `afterCommit` runs at once.
   */
  batch?: WriteBatch;
}

/**
 * The stores get a reader and a StoreWriter (store-writer.ts), never `db` or
 * `sqlite`: every write they make is one of the batch's.
 */
export function createStores(db: RelayDb, sqlite: Database, opts: StoreOptions): Stores {
  const batch = opts.batch;
  const reader = storeReader(db);
  const writer = createStoreWriter(db, batch ?? createImmediateWriter(sqlite));
  return {
    tasks: createTaskStore(reader, writer),
    taskEvents: createTaskEventStore(reader, writer),
    outbox: createOutboxStore(reader, writer),
    connectionLog: createConnectionLogStore(reader, writer, opts.logKeep),
    meta: createMetaStore(reader, writer),
    bindings: createBindingStore(reader, writer),
    afterCommit: batch ? batch.afterCommit : (fn) => fn(),
    storage: batch ? () => batch.status : () => HEALTHY,
  };
}

const HEALTHY = { ok: true } as const;
