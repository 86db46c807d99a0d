import { describe, expect, test } from "bun:test";
import { createConnectionLogStore, LOG_PRUNE_EVERY } from "../../src/store/connection-log-store.ts";
import { openStores, tempDir } from "./helpers.ts";

describe("ConnectionLogStore", () => {
  test("lists newest first with all fields", () => {
    using db = openStores();
    const log = db.stores.connectionLog;
    log.insert("upstream.open", 1000, "wss://server");
    log.insert("daemon.close", 2000, null);
    expect(log.list(10)).toEqual([
      { id: 2, event: "daemon.close", timestamp: 2000, details: null },
      { id: 1, event: "upstream.open", timestamp: 1000, details: "wss://server" },
    ]);
    expect(log.list(1).map((e) => e.event)).toEqual(["daemon.close"]);
  });

  test("keeps exactly the newest N, and prunes the table without a delete per insert", () => {
    const keep = 10;
    using db = openStores(":memory:", keep);
    const log = db.stores.connectionLog;
    const rows = () =>
      (db.sqlite.query("SELECT COUNT(*) AS n FROM connection_log").get() as { n: number }).n;
    const total = LOG_PRUNE_EVERY * 3 + 7;
    for (let i = 0; i < total; i++) log.insert(`e${i}`, i, null);
    const expected = Array.from({ length: keep }, (_, k) => `e${total - 1 - k}`);
    expect(log.list(1000).map((e) => e.event)).toEqual(expected);
    // Between prunes the table may hold up to PRUNE_EVERY - 1 extra rows, never more.
    expect(rows()).toBe(keep + 7);
    for (let i = total; i < LOG_PRUNE_EVERY * 4; i++) log.insert(`e${i}`, i, null);
    expect(rows()).toBe(keep);
  });

  test("a reopen with a smaller keep trims the table at once", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file, 100);
      for (let i = 0; i < 50; i++) db.stores.connectionLog.insert(`e${i}`, i, null);
    }
    using db = openStores(file, 5);
    const count = db.sqlite.query("SELECT COUNT(*) AS n FROM connection_log").get();
    expect(count).toEqual({ n: 5 });
    expect(db.stores.connectionLog.list(100).map((e) => e.event)).toEqual([
      "e49",
      "e48",
      "e47",
      "e46",
      "e45",
    ]);
  });

  test("rejects a negative or fractional keep", () => {
    using db = openStores();
    expect(() => createConnectionLogStore(db.db, -1)).toThrow(RangeError);
    expect(() => createConnectionLogStore(db.db, 1.5)).toThrow(RangeError);
  });
});
