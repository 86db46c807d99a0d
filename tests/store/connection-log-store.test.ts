import { describe, expect, test } from "bun:test";
import { createConnectionLogStore, LOG_PRUNE_EVERY } from "../../src/store/connection-log-store.ts";
import {
  createImmediateWriter,
  createStoreWriter,
  storeReader,
} from "../../src/store/store-writer.ts";
import { BACKENDS, openBatched, openStores, row, tempDir } from "./helpers.ts";

const count = (db: { sqlite: import("bun:sqlite").Database }) =>
  row<{ n: number }>(db.sqlite, "SELECT COUNT(*) AS n FROM connection_log").n;

for (const backend of BACKENDS) {
  describe(`ConnectionLogStore (${backend.name})`, () => {
    test("lists newest first with all fields", () => {
      using s = backend.open();
      const log = s.stores.connectionLog;
      log.insert("upstream.open", 1000, "wss://server");
      log.insert("daemon.close", 2000, null);
      expect(log.list(10)).toEqual([
        { id: 2, event: "daemon.close", timestamp: 2000, details: null },
        { id: 1, event: "upstream.open", timestamp: 1000, details: "wss://server" },
      ]);
      expect(log.list(1).map((e) => e.event)).toEqual(["daemon.close"]);
    });
  });
}

describe("ConnectionLogStore (SQLite only)", () => {
  test("keeps exactly the newest N, and prunes the table without a delete per insert", () => {
    const keep = 10;
    using db = openStores(":memory:", keep);
    const log = db.stores.connectionLog;
    const total = LOG_PRUNE_EVERY * 3 + 7;
    for (let i = 0; i < total; i++) log.insert(`e${i}`, i, null);
    const expected = Array.from({ length: keep }, (_, k) => `e${total - 1 - k}`);
    expect(log.list(1000).map((e) => e.event)).toEqual(expected);
    // Between prunes the table may hold up to PRUNE_EVERY - 1 extra rows, never more.
    expect(count(db)).toBe(keep + 7);
    for (let i = total; i < LOG_PRUNE_EVERY * 4; i++) log.insert(`e${i}`, i, null);
    expect(count(db)).toBe(keep);
  });

  test("a reopen with a smaller keep trims the table at once", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file, 100);
      for (let i = 0; i < 50; i++) db.stores.connectionLog.insert(`e${i}`, i, null);
    }
    using db = openStores(file, 5);
    expect(count(db)).toBe(5);
    expect(db.stores.connectionLog.list(100).map((e) => e.event)).toEqual([
      "e49",
      "e48",
      "e47",
      "e46",
      "e45",
    ]);
  });

  test("inserts retried after a failed commit prune on schedule: never PRUNE_EVERY extra rows", () => {
    const keep = 10;
    using db = openBatched({ logKeep: keep, retryBaseMs: 10 });
    const log = db.stores.connectionLog;
    let n = 0;
    const insert = (k: number) => {
      for (let i = 0; i < k; i++) log.insert(`e${n++}`, n, null);
    };
    const extraRows = () => count(db) - keep;
    insert(LOG_PRUNE_EVERY - 4);
    db.endTurn();
    // The failed transaction held the turn's prune; it is undone with the inserts...
    insert(8);
    db.tx.failCommits = 1;
    db.endTurn();
    expect(db.batch.status.ok).toBe(false);
    // ...and the retry must prune again.
    db.clock.advance(10);
    expect(db.batch.status.ok).toBe(true);
    let worst = extraRows();
    for (let turn = 0; turn < 3 * LOG_PRUNE_EVERY; turn++) {
      insert(1);
      db.endTurn();
      worst = Math.max(worst, extraRows());
    }
    expect(worst).toBeLessThan(LOG_PRUNE_EVERY);
    expect(log.list(keep).map((e) => e.event)).toEqual(
      Array.from({ length: keep }, (_, k) => `e${n - 1 - k}`),
    );
  });

  test("rejects a negative or fractional keep", () => {
    using db = openStores();
    const reader = storeReader(db.db);
    const writer = createStoreWriter(db.db, createImmediateWriter(db.sqlite));
    expect(() => createConnectionLogStore(reader, writer, -1)).toThrow(RangeError);
    expect(() => createConnectionLogStore(reader, writer, 1.5)).toThrow(RangeError);
  });
});
