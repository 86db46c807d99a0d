/**
 * The handle the SQLite stores write through (src/store/store-writer.ts): a
 * write outside the turn's batch does not compile, a declared statement runs
 * only inside a write, and what a write changes is committed before anything
 * that waited for it runs.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { openDatabase } from "../../src/store/database.ts";
import { meta } from "../../src/store/schema.ts";
import {
  createImmediateWriter,
  createStoreWriter,
  type StoreReader,
  type StoreWriter,
  storeReader,
  type WriteTx,
} from "../../src/store/store-writer.ts";
import { NO_LIMIT, openBatched, pending, row, tempDir } from "./helpers.ts";

const p = sql.placeholder;

const metaRows = (sqlite: Database) =>
  row<{ n: number }>(sqlite, "SELECT COUNT(*) AS n FROM meta").n;

describe("StoreWriter: no write outside it", () => {
  test("the reader, a declared statement and an async apply cannot write (checked by tsc)", () => {
    // Never called: tsc compiles this test, and each line below must fail to type-check.
    const attempts = (reader: StoreReader, writer: StoreWriter) => {
      // @ts-expect-error the reader builds queries only
      reader.insert(meta).values({ key: "k", value: "v" }).run();
      // @ts-expect-error nor does it run SQL of its own
      reader.run(sql`DELETE FROM meta`);
      const set = writer.prepare((db) =>
        db
          .insert(meta)
          .values({ key: p("key"), value: "v" })
          .prepare(),
      );
      // @ts-expect-error a declared statement is no statement until a write opens it
      set.run({ key: "k" });
      // @ts-expect-error an async apply would run its awaited part after the COMMIT
      writer.write(async (tx) => tx(set).run({ key: "k" }));
      // The one way that compiles.
      writer.write((tx) => tx(set).run({ key: "k" }));
    };
    expect(attempts).toBeInstanceOf(Function);
  });

  test("the reader has no write methods at runtime either", () => {
    using db = openDatabase(":memory:");
    const reader = storeReader(db.db) as unknown as Record<string, unknown>;
    expect(Object.keys(reader)).toEqual(["select", "query"]);
    expect(Object.isFrozen(reader)).toBe(true);
    expect(reader.select).toBeInstanceOf(Function);
  });

  test("the reader's raw query takes one SELECT and refuses a write", () => {
    using db = openDatabase(":memory:");
    const reader = storeReader(db.db);
    expect(reader.query<{ n: number }, []>("SELECT 1 AS n").get()).toEqual({ n: 1 });
    for (const sql of [
      "DELETE FROM outbox",
      "INSERT INTO meta (key, value) VALUES ('k', 'v')",
      "  update meta set value = 'x'",
      "SELECT 1; DELETE FROM outbox",
      "WITH x AS (SELECT 1) DELETE FROM outbox",
    ])
      expect(() => reader.query(sql)).toThrow(/single SELECT/);
  });

  test("a statement is built inside the first write that uses it, once, and opens only there", () => {
    using db = openDatabase(":memory:");
    const writer = createStoreWriter(db.db, createImmediateWriter(db.sqlite));
    const built: boolean[] = [];
    const set = writer.prepare((d) => {
      built.push(db.sqlite.inTransaction);
      return d
        .insert(meta)
        .values({ key: p("key"), value: "v" })
        .prepare();
    });
    expect(built).toEqual([]);
    let leaked: WriteTx | null = null;
    writer.write((tx) => {
      leaked = tx;
      tx(set).run({ key: "a" });
    });
    writer.write((tx) => tx(set).run({ key: "b" }));
    expect([built, metaRows(db.sqlite)]).toEqual([[true], 2]);
    // Kept past its write, the handle opens nothing.
    expect(() => (leaked as unknown as WriteTx)(set)).toThrow(/only inside StoreWriter.write/);
  });

  test("an async apply is refused inside its transaction: what it wrote first is rolled back", () => {
    using db = openDatabase(":memory:");
    const writer = createStoreWriter(db.db, createImmediateWriter(db.sqlite));
    const set = writer.prepare((d) =>
      d
        .insert(meta)
        .values({ key: p("key"), value: "v" })
        .prepare(),
    );
    const dropped: unknown[] = [];
    const asyncApply = async (tx: WriteTx) => {
      tx(set).run({ key: "written before the first await" });
    };
    expect(() =>
      writer.write(asyncApply as unknown as (tx: WriteTx) => void, undefined, (err) =>
        dropped.push(err),
      ),
    ).toThrow(/synchronous/);
    expect([metaRows(db.sqlite), dropped.length, db.sqlite.inTransaction]).toEqual([0, 1, false]);
  });
});

describe("StoreWriter behind a write batch: committed before told", () => {
  test("no store writes before the turn's commit; afterCommit runs once it is on disk", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    using db = openBatched({ path: file });
    using other = new Database(file, { readonly: true });
    const changes = () => row<{ n: number }>(db.sqlite, "SELECT total_changes() AS n").n;
    const before = changes();
    const { stores } = db;
    stores.tasks.savePending(pending("a", 1));
    stores.tasks.markDispatched("a", "d1", "m1", 2);
    stores.tasks.holdCommand("a", "frame");
    stores.outbox.append("frame", true, NO_LIMIT);
    stores.connectionLog.insert("event", 1, null);
    stores.meta.set("k", "v");
    stores.bindings.bind({ machineId: "m1", fingerprint: "f", boundAt: 1 });
    const seen: unknown[] = [];
    stores.afterCommit(() =>
      seen.push(row(other, "SELECT status FROM tasks WHERE task_id = 'a'"), metaRows(other)),
    );
    // Nothing reached the file, nor even this connection's open transaction.
    expect([changes() - before, db.sqlite.inTransaction, seen]).toEqual([0, false, []]);
    expect(row(other, "SELECT COUNT(*) AS n FROM tasks")).toEqual({ n: 0 });
    db.endTurn();
    expect(changes()).toBeGreaterThan(before);
    // meta holds "k" alone: a new task writes no counter there (task-store.ts).
    expect(seen).toEqual([{ status: "dispatched" }, 1]);
  });

  test("a failed commit tells nothing; the retry commits, then tells", () => {
    using db = openBatched({ retryBaseMs: 10 });
    const told: string[] = [];
    db.stores.meta.set("k", "v");
    db.stores.afterCommit(() => told.push(`after: ${db.stores.meta.get("k")}`));
    db.tx.failCommits = 1;
    db.endTurn();
    expect([told, db.stores.meta.get("k")]).toEqual([[], null]);
    db.clock.advance(10);
    expect(told).toEqual(["after: v"]);
  });
});
