/**
 * What a SQLite store is given to reach the database: a reader that can only
 * build queries, and a StoreWriter whose `write(apply)` is the one place a
 * write statement runs. A store never holds the drizzle db or the bun:sqlite
 * handle, so a write it makes outside the turn's batch does not type-check,
 * rather than autocommitting ahead of the frames that depend on it
 * (docs/protocol.md "Storage failures": commit before telling).
 *
 * Write statements are still prepared once (a call costs a bind and a step,
 * never a SQL compile): `prepare(build)` declares one, and it is built from
 * the database the first time a write applies it, inside that write's
 * transaction, then reused. Only the `tx` handed to `apply` opens it, and only
 * while some `apply` runs. A hot write may be built as a raw bun:sqlite
 * statement (the second argument of `build`): positional binds, no row mapping.
 */
import type { Database, SQLQueryBindings, Statement } from "bun:sqlite";
import type { RelayDb } from "./relay-db.ts";
import type { WriteBatch, Writer } from "./write-batch.ts";

/** Queries only: a store reads the committed state with it. */
export interface StoreReader extends Pick<RelayDb, "select"> {
  /**
   * A raw bun:sqlite SELECT, for a hot read (no row mapping). Anything but a
   * single SELECT is refused: writes go through StoreWriter.write only.
   */
  query<Row, Params extends SQLQueryBindings[]>(sql: string): Statement<Row, Params>;
}

export function storeReader(db: RelayDb): StoreReader {
  const sqlite = client(db);
  // Its own object, not the db typed narrower: no cast gives back insert/update/delete.
  return Object.freeze({
    select: db.select.bind(db) as RelayDb["select"],
    query: <Row, Params extends SQLQueryBindings[]>(sql: string) => {
      if (!/^\s*SELECT\b/i.test(sql) || sql.includes(";"))
        throw new Error("StoreReader.query takes a single SELECT");
      return sqlite.prepare<Row, Params>(sql);
    },
  });
}

const SLOT = Symbol("write statement");

/** What a write statement is built from: the drizzle db, and its bun:sqlite handle. */
export type StatementBuilder<S> = (db: RelayDb, sqlite: Database) => S;

interface Slot<S> {
  build: StatementBuilder<S>;
  built: S | undefined;
}

/** A write statement declared with StoreWriter.prepare; `tx(statement)` opens it inside a write. */
export interface WriteStatement<S> {
  readonly [SLOT]: Slot<S>;
}

/** Handed to `apply`: opens a declared statement, inside the write's transaction only. */
export type WriteTx = <S>(statement: WriteStatement<S>) => S;

/** An apply that returns a promise would run its awaited part after the COMMIT (drizzle#1472). */
export type NotPromise<T> = T extends PromiseLike<unknown> ? never : T;

export interface StoreWriter {
  /** Declares a write statement, built at its first use inside a write and reused after. */
  prepare<S>(build: StatementBuilder<S>): WriteStatement<S>;
  /** Writer.write, with the statements `apply` may run. */
  write<T>(
    apply: (tx: WriteTx) => NotPromise<T>,
    committed?: (result: T) => void,
    dropped?: (err: unknown) => void,
  ): void;
  /** Writer.writeFreeing where the batch has it, else an ordinary write. */
  writeFreeing<T>(apply: (tx: WriteTx) => NotPromise<T>, committed?: (result: T) => void): void;
  /** After a rolled-back transaction: reload what the store caches from the committed state. */
  onRollback(reload: () => void): void;
}

/** What the StoreWriter queues its writes on: a write batch, or createImmediateWriter. */
export type WriteQueue = Writer & Pick<WriteBatch, "onRollback">;

export function createStoreWriter(db: RelayDb, queue: WriteQueue): StoreWriter {
  /** How many applies are running (a nested one keeps the outer's transaction). */
  let applying = 0;
  const tx: WriteTx = (statement) => {
    if (applying === 0) throw new Error("a write statement runs only inside StoreWriter.write");
    const slot = statement[SLOT];
    if (slot.built === undefined) slot.built = slot.build(db, client(db));
    return slot.built;
  };
  const inWrite =
    <T>(apply: (tx: WriteTx) => T) =>
    (): T => {
      applying += 1;
      let result: T;
      try {
        result = apply(tx);
      } finally {
        applying -= 1;
      }
      // Thrown inside the transaction: the batch drops it as a bug and rolls back what it wrote.
      if (isThenable(result))
        throw new TypeError("a write's apply returned a promise; it must be synchronous");
      return result;
    };
  return {
    prepare: (build) => ({ [SLOT]: { build, built: undefined } }),
    write: (apply, committed, dropped) => queue.write(inWrite(apply), committed, dropped),
    writeFreeing: (apply, committed) =>
      queue.writeFreeing
        ? queue.writeFreeing(inWrite(apply), committed)
        : queue.write(inWrite(apply), committed),
    onRollback: (reload) => queue.onRollback(reload),
  };
}

/** drizzle keeps the bun:sqlite handle it wraps as `$client` (not in RelayDb's type). */
function client(db: RelayDb): Database {
  return (db as RelayDb & { $client: Database }).$client;
}

function isThenable(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/**
 * A writer without batching (tools, tests): each write is its own
 * transaction, committed before `write` returns. A write that throws is
 * rolled back (the stores reload what they cache), told `dropped`, and its
 * error reaches the caller.
 */
export function createImmediateWriter(sqlite: Database): WriteQueue {
  const inTransaction = sqlite.transaction((apply: () => unknown) => apply());
  const reloads: Array<() => void> = [];
  return {
    write(apply, committed, dropped) {
      let result: ReturnType<typeof apply>;
      try {
        result = inTransaction(apply) as ReturnType<typeof apply>;
      } catch (err) {
        for (const reload of reloads) reload();
        dropped?.(err);
        throw err;
      }
      committed?.(result);
    },
    onRollback: (reload) => reloads.push(reload),
  };
}
