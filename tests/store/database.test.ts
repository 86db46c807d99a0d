import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, resolveDatabasePath } from "../../src/store/database.ts";
import { createImmediateWriter } from "../../src/store/store-writer.ts";
import { NO_LIMIT, openBatched, openStores, pending, row, tempDir } from "./helpers.ts";

function pragma(db: { sqlite: Database }, name: string): unknown {
  const r = db.sqlite.query(`PRAGMA ${name}`).get() as Record<string, unknown>;
  return Object.values(r)[0];
}

describe("openDatabase", () => {
  test("sets the PRAGMAs on a file database", () => {
    using dir = tempDir();
    using db = openDatabase(dir.file("relay.db"));
    expect({
      journal: pragma(db, "journal_mode"),
      synchronous: pragma(db, "synchronous"),
      busy: pragma(db, "busy_timeout"),
      fk: pragma(db, "foreign_keys"),
    }).toEqual({ journal: "wal", synchronous: 1, busy: 250, fk: 1 });
  });

  test("synchronous=full fsyncs every commit", () => {
    using dir = tempDir();
    using db = openDatabase(dir.file("relay.db"), { synchronous: "full" });
    expect(pragma(db, "synchronous")).toBe(2);
  });

  test("enforces foreign keys and strict binding on :memory:", () => {
    using db = openDatabase(":memory:");
    expect(pragma(db, "foreign_keys")).toBe(1);
    expect(() =>
      db.sqlite.run("INSERT INTO held_commands (task_id, frame) VALUES ('nope', 'x')"),
    ).toThrow(/FOREIGN KEY/);
    // strict: a missing named parameter throws instead of binding NULL.
    expect(() => db.sqlite.query("SELECT $a AS a").get({} as never)).toThrow();
  });

  test("resolves relative paths against the working directory", () => {
    expect(resolveDatabasePath("data/relay.db", "/srv/relay")).toBe("/srv/relay/data/relay.db");
    expect(resolveDatabasePath("/abs/relay.db", "/srv/relay")).toBe("/abs/relay.db");
    expect(resolveDatabasePath(":memory:", "/srv/relay")).toBe(":memory:");
    expect(resolveDatabasePath("relay.db")).toBe(join(process.cwd(), "relay.db"));
  });

  test("creates a missing parent directory", () => {
    using dir = tempDir();
    const file = join(dir.path, "a", "b", "relay.db");
    openDatabase(file).close();
    expect(existsSync(file)).toBe(true);
  });

  test("close() checkpoints the WAL into the file and can be called twice", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    const db = openStores(file);
    for (let i = 0; i < 100; i++) db.stores.outbox.append(`frame-${i}`, false, NO_LIMIT);
    db.close();
    db.close();
    const wal = `${file}-wal`;
    expect(existsSync(wal) ? statSync(wal).size : 0).toBe(0);
    using again = openStores(file);
    expect(again.stores.outbox.stats().frames).toBe(100);
  });

  test("close() really closes: the stores' prepared statements stop working", () => {
    using dir = tempDir();
    const db = openStores(dir.file("relay.db"));
    db.stores.meta.set("k", "v");
    db.close();
    expect(() => db.stores.meta.set("k", "late")).toThrow(/closed/);
    using again = openStores(dir.file("relay.db"));
    expect(again.stores.meta.get("k")).toBe("v");
  });
});

describe("createStores without a write batch", () => {
  test("each write is committed before it returns: another connection sees it at once", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    using db = openStores(file);
    using other = new Database(file, { readonly: true });
    db.stores.tasks.savePending(pending("a", 1));
    expect(row(other, "SELECT status FROM tasks WHERE task_id = 'a'")).toEqual({
      status: "pending",
    });
    db.stores.outbox.append("frame", true, NO_LIMIT);
    expect(row(other, "SELECT COUNT(*) AS n FROM outbox")).toEqual({ n: 1 });
    expect(db.sqlite.inTransaction).toBe(false);
  });

  test("afterCommit runs at once and storage() is healthy", () => {
    using db = openStores();
    const ran: string[] = [];
    db.stores.meta.set("k", "v");
    db.stores.afterCommit(() => ran.push("now"));
    expect(ran).toEqual(["now"]);
    expect(db.stores.storage()).toEqual({ ok: true });
  });

  test("a write that throws is undone as a whole and the error reaches the caller", () => {
    using db = openStores();
    const writer = createImmediateWriter(db.sqlite);
    const told: unknown[] = [];
    expect(() =>
      writer.write(
        () => {
          db.sqlite.run("INSERT INTO meta (key, value) VALUES ('half', 'written')");
          throw new Error("boom");
        },
        (r) => told.push(r),
      ),
    ).toThrow("boom");
    expect(db.stores.meta.get("half")).toBeNull();
    expect(told).toEqual([]);
    writer.write(
      () => 42,
      (r) => told.push(r),
    );
    expect(told).toEqual([42]);
  });
});

describe("createStores with a write batch", () => {
  test("writes wait for the batch's flush; afterCommit and storage() are the batch's", () => {
    using db = openBatched();
    const ran: string[] = [];
    db.stores.tasks.savePending(pending("a", 1));
    db.stores.meta.set("k", "v");
    db.stores.afterCommit(() => ran.push("after"));
    expect([db.stores.tasks.get("a"), db.stores.meta.get("k"), ran]).toEqual([null, null, []]);
    expect(db.scheduled).toBe(1);
    db.endTurn();
    expect([db.stores.tasks.get("a")?.status, db.stores.meta.get("k"), ran]).toEqual([
      "pending",
      "v",
      ["after"],
    ]);
    db.tx.failCommits = 1;
    db.stores.meta.set("k", "w");
    db.endTurn();
    expect(db.stores.storage()).toEqual(db.batch.status);
    expect(db.stores.storage()).toMatchObject({ ok: false, code: "SQLITE_FULL", pendingWrites: 1 });
  });
});
