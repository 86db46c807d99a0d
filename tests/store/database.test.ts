import { describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, resolveDatabasePath } from "../../src/store/database.ts";
import { openStores, pending, tempDir } from "./helpers.ts";

function pragma(db: { sqlite: import("bun:sqlite").Database }, name: string): unknown {
  const row = db.sqlite.query(`PRAGMA ${name}`).get() as Record<string, unknown>;
  return Object.values(row)[0];
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
    }).toEqual({ journal: "wal", synchronous: 1, busy: 5000, fk: 1 });
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
    for (let i = 0; i < 100; i++) db.stores.outbox.append(`frame-${i}`, false);
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

describe("Stores.transaction", () => {
  test("commits the callback's writes and returns its value", () => {
    using db = openStores();
    const result = db.stores.transaction(() => {
      db.stores.tasks.savePending(pending("a", 1));
      db.stores.meta.set("k", "v");
      return 42;
    });
    expect(result).toBe(42);
    expect([db.stores.tasks.get("a")?.status, db.stores.meta.get("k")]).toEqual(["pending", "v"]);
  });

  test("rolls everything back when the callback throws, outbox stats included", () => {
    using db = openStores();
    db.stores.outbox.append("kept", true);
    expect(() =>
      db.stores.transaction(() => {
        db.stores.tasks.savePending(pending("a", 1));
        db.stores.outbox.append("rolled back", false);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(db.stores.tasks.get("a")).toBeNull();
    expect(db.stores.outbox.peek(10).map((e) => e.frame)).toEqual(["kept"]);
    expect(db.stores.outbox.stats()).toEqual({ frames: 1, bytes: 4 });
  });

  test("a nested transaction that throws undoes only its own writes", () => {
    using db = openStores();
    db.stores.transaction(() => {
      db.stores.outbox.append("outer", false);
      expect(() =>
        db.stores.transaction(() => {
          db.stores.outbox.append("inner", false);
          throw new Error("inner");
        }),
      ).toThrow("inner");
    });
    expect(db.stores.outbox.peek(10).map((e) => e.frame)).toEqual(["outer"]);
    expect(db.stores.outbox.stats()).toEqual({ frames: 1, bytes: 5 });
  });

  test("refuses an async callback and rolls back what it wrote before awaiting", () => {
    using db = openStores();
    const asyncFn = async () => {
      db.stores.meta.set("k", "written before the first await");
    };
    expect(() => db.stores.transaction(asyncFn)).toThrow(/synchronous/);
    expect(db.stores.meta.get("k")).toBeNull();
  });
});
