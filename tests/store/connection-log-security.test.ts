/**
 * Noise must not evict the record of an attack: security events have their
 * own retention and a reserved half of every listing; a repeated event is
 * one row, replaced at each repeat.
 */
import { describe, expect, test } from "bun:test";
import { LOG_PRUNE_EVERY } from "../../src/store/connection-log-store.ts";
import { reserveForSecurity } from "../../src/store/log-listing.ts";
import { BACKENDS, openBatched, openStores, row, tempDir } from "./helpers.ts";

const count = (db: { sqlite: import("bun:sqlite").Database }, security: 0 | 1) =>
  row<{ n: number }>(
    db.sqlite,
    `SELECT COUNT(*) AS n FROM connection_log WHERE security = ${security}`,
  ).n;

for (const backend of BACKENDS) {
  describe(`ConnectionLogStore security and repeats (${backend.name})`, () => {
    test("a repeat replaces its row: one row, moved to the top, with the latest text", () => {
      using s = backend.open();
      const log = s.stores.connectionLog;
      log.insert("auth_failed", 1, "rejected: bad key", { replaces: "k1" });
      log.insert("downstream_connect", 2, "a daemon");
      log.insert("auth_failed", 3, "rejected 2 times", { replaces: "k1" });
      log.insert("auth_failed", 4, "another address", { replaces: "k2" });
      expect(log.list(10).map((e) => [e.event, e.timestamp, e.details])).toEqual([
        ["auth_failed", 4, "another address"],
        ["auth_failed", 3, "rejected 2 times"],
        ["downstream_connect", 2, "a daemon"],
      ]);
    });

    test("up to half of a listing is kept for the newest security events, however old", () => {
      using s = backend.open();
      const log = s.stores.connectionLog;
      log.insert("machine_takeover_refused", 1, "attack 1", { security: true });
      log.insert("machine_takeover_refused", 2, "attack 2", { security: true });
      for (let i = 0; i < 90; i++) log.insert("auth_failed", 10 + i, `noise ${i}`);
      const ten = log.list(10).map((e) => e.details);
      expect(ten).toEqual([
        ...Array.from({ length: 8 }, (_, k) => `noise ${89 - k}`),
        "attack 2",
        "attack 1",
      ]);
      // A listing of 2 reserves 1: the newest security event.
      expect(log.list(2).map((e) => e.details)).toEqual(["noise 89", "attack 2"]);
      expect(log.list(1).map((e) => e.details)).toEqual(["noise 89"]);
    });
  });
}

describe("ConnectionLogStore retention by kind (SQLite)", () => {
  test("other events never prune security ones; each kind keeps its newest `keep`", () => {
    const keep = 10;
    using db = openStores(":memory:", keep);
    const log = db.stores.connectionLog;
    for (let i = 0; i < 3; i++)
      log.insert("daemon_replaced", i, `security ${i}`, { security: true });
    for (let i = 0; i < LOG_PRUNE_EVERY * 5; i++) log.insert("auth_failed", 100 + i, `noise ${i}`);
    expect([count(db, 1), count(db, 0) <= keep + LOG_PRUNE_EVERY]).toEqual([3, true]);
    expect(log.list(keep).filter((e) => e.event === "daemon_replaced")).toHaveLength(3);
    // Security events have a cap of their own, too.
    for (let i = 3; i < LOG_PRUNE_EVERY * 3; i++)
      log.insert("daemon_replaced", i, `security ${i}`, { security: true });
    expect(count(db, 1)).toBeLessThan(keep + LOG_PRUNE_EVERY);
    expect(log.list(keep).filter((e) => e.event === "daemon_replaced")).toHaveLength(keep);
  });

  test("repeats do not shorten other rows' stay: retention counts rows, not ids", () => {
    const keep = 10;
    using db = openStores(":memory:", keep);
    const log = db.stores.connectionLog;
    log.insert("downstream_connect", 1, "kept");
    for (let i = 0; i < LOG_PRUNE_EVERY * 4; i++)
      log.insert("auth_failed", 2 + i, `x${i}`, { replaces: "one" });
    expect(log.list(keep).map((e) => e.details)).toEqual([`x${LOG_PRUNE_EVERY * 4 - 1}`, "kept"]);
  });

  test("a reopen with a smaller keep trims each kind at once", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file, 100);
      for (let i = 0; i < 30; i++) db.stores.connectionLog.insert("e", i, null);
      for (let i = 0; i < 30; i++) db.stores.connectionLog.insert("s", i, null, { security: true });
    }
    using db = openStores(file, 5);
    expect([count(db, 0), count(db, 1)]).toEqual([5, 5]);
  });

  test("a repeat replayed after a failed commit still leaves one row", () => {
    using db = openBatched({ retryBaseMs: 10 });
    const log = db.stores.connectionLog;
    log.insert("auth_failed", 1, "1 time", { replaces: "k" });
    db.endTurn();
    log.insert("auth_failed", 2, "2 times", { replaces: "k" });
    db.tx.failCommits = 1;
    db.endTurn();
    db.clock.advance(10);
    expect(db.batch.status.ok).toBe(true);
    expect(log.list(10).map((e) => e.details)).toEqual(["2 times"]);
  });
});

test("reserveForSecurity: the newest rows, the oldest other rows making room for missing security ones", () => {
  const r = (id: number, security = false) => ({ id, security });
  const newest = [r(10), r(9), r(8, true), r(7), r(6)];
  expect(reserveForSecurity(newest, [r(8, true)], 5)).toEqual(newest);
  expect(reserveForSecurity(newest, [r(8, true), r(3, true), r(1, true)], 5)).toEqual([
    r(10),
    r(9),
    r(8, true),
    r(7),
    r(3, true),
  ]);
  expect(reserveForSecurity([r(2), r(1)], [], 5)).toEqual([r(2), r(1)]);
  expect(reserveForSecurity([], [], 0)).toEqual([]);
});
