import { describe, expect, test } from "bun:test";
import type { OutboxDrop, SendResult } from "../../src/core/ports.ts";
import { SENT_DELETE_MS, UpstreamOutbox } from "../../src/core/upstream-outbox.ts";
import { FakeLog } from "../unit/fakes.ts";
import { BACKENDS, NO_LIMIT, openBatched, openStores, row, tempDir } from "./helpers.ts";

const frames = (entries: { frame: string }[]) => entries.map((e) => e.frame);

for (const backend of BACKENDS) {
  describe(`OutboxStore (${backend.name})`, () => {
    test("append and peekAfter keep arrival order and measure UTF-8 bytes", () => {
      using s = backend.open();
      const { outbox } = s.stores;
      outbox.append("first", false, NO_LIMIT);
      outbox.append("é€", true, NO_LIMIT);
      outbox.append("third", false, NO_LIMIT);
      const [a, b, c] = outbox.peekAfter(0, 10);
      expect([a, b, c]).toEqual([
        { id: expect.any(Number), frame: "first", bytes: 5, critical: false },
        { id: expect.any(Number), frame: "é€", bytes: 5, critical: true },
        { id: expect.any(Number), frame: "third", bytes: 5, critical: false },
      ]);
      expect((a?.id ?? 0) < (b?.id ?? 0) && (b?.id ?? 0) < (c?.id ?? 0)).toBe(true);
      expect(frames(outbox.peekAfter(0, 2))).toEqual(["first", "é€"]);
      expect(outbox.stats()).toEqual({ frames: 3, bytes: 15 });
    });

    test("peekAfter starts after the given id and stops at the limit", () => {
      using s = backend.open();
      const { outbox } = s.stores;
      for (const f of ["a", "b", "c", "d"]) outbox.append(f, false, NO_LIMIT);
      const [first, second] = outbox.peekAfter(0, 10);
      if (first === undefined || second === undefined) throw new Error("expected entries");
      expect(frames(outbox.peekAfter(first.id, 10))).toEqual(["b", "c", "d"]);
      expect(frames(outbox.peekAfter(second.id, 1))).toEqual(["c"]);
      expect(outbox.peekAfter(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
      // Peeking reads; it removes nothing.
      expect(outbox.stats()).toEqual({ frames: 4, bytes: 4 });
    });

    test("markSent: rows up to the id leave the stats at once, and the table with the next append", () => {
      using s = backend.open();
      const { outbox } = s.stores;
      for (const f of ["a", "bb", "ccc", "dddd"]) outbox.append(f, f === "bb", NO_LIMIT);
      const second = outbox.peekAfter(0, 2)[1];
      if (second === undefined) throw new Error("expected two entries");
      outbox.markSent(second.id);
      expect(frames(outbox.peekAfter(second.id, 10))).toEqual(["ccc", "dddd"]);
      expect(outbox.stats()).toEqual({ frames: 2, bytes: 7 });
      outbox.markSent(second.id);
      expect(outbox.stats()).toEqual({ frames: 2, bytes: 7 });
      // The delete rides on the append: the sent rows are gone, the new one is there.
      outbox.append("e", false, NO_LIMIT);
      expect(frames(outbox.peekAfter(0, 10))).toEqual(["ccc", "dddd", "e"]);
      expect(outbox.stats()).toEqual({ frames: 3, bytes: 8 });
      outbox.markSent(Number.MAX_SAFE_INTEGER);
      expect(outbox.stats()).toEqual({ frames: 0, bytes: 0 });
      expect(outbox.deleteSent()).toBe(true);
      expect([outbox.peekAfter(0, 10), outbox.stats()]).toEqual([[], { frames: 0, bytes: 0 }]);
    });

    test("over the budget, append drops the oldest non-critical frames to make room", () => {
      using s = backend.open();
      const { outbox } = s.stores;
      const told: (OutboxDrop | null)[] = [];
      const stored = (d: OutboxDrop | null) => told.push(d);
      outbox.append("c1", true, 16, stored); // 2
      outbox.append("n1--", false, 16, stored); // 4
      outbox.append("c2", true, 16, stored); // 2
      outbox.append("n2--", false, 16, stored); // 4
      outbox.append("n3--", false, 16, stored); // 4: 16, still within the budget
      expect(told).toEqual([null, null, null, null, null]);
      // 16 + 5 - 16 = 5 over: n1 and n2 (8 bytes) go, n3 stays.
      outbox.append("new-5", false, 16, stored);
      expect(told.at(-1)).toEqual({ frames: 2, bytes: 8, refused: 0 });
      expect(frames(outbox.peekAfter(0, 10))).toEqual(["c1", "c2", "n3--", "new-5"]);
      expect(outbox.stats()).toEqual({ frames: 4, bytes: 13 });
      // Exactly at the budget: nothing goes.
      outbox.append("abc", false, 16, stored);
      expect(told.at(-1)).toBeNull();
      expect(outbox.stats()).toEqual({ frames: 5, bytes: 16 });
    });

    test("critical frames are never dropped, and are kept even over the budget", () => {
      using s = backend.open();
      const { outbox } = s.stores;
      for (let i = 0; i < 1000; i++) outbox.append(`frame-${i}`, i % 3 === 0, NO_LIMIT);
      const all = outbox.peekAfter(0, 1000);
      const critical = all.filter((e) => e.critical);
      const droppable = all.filter((e) => !e.critical);
      const told: (OutboxDrop | null)[] = [];
      // A budget of 1 byte: every non-critical frame goes, the critical one is stored anyway.
      outbox.append("critical-over-budget", true, 1, (d) => told.push(d));
      const left = outbox.peekAfter(0, 2000);
      expect(told).toEqual([
        {
          frames: droppable.length,
          bytes: droppable.reduce((n, e) => n + e.bytes, 0),
          refused: 0,
        },
      ]);
      expect(droppable.length).toBe(1000 - critical.length);
      expect(frames(left)).toEqual([...frames(critical), "critical-over-budget"]);
      expect(left.every((e) => e.critical)).toBe(true);
      expect(outbox.stats()).toEqual({
        frames: critical.length + 1,
        bytes: left.reduce((n, e) => n + e.bytes, 0),
      });
      // Nothing droppable is left: the next critical frame drops nothing and is stored.
      outbox.append("c", true, 1, (d) => told.push(d));
      expect(told[1]).toBeNull();
      expect(outbox.stats().frames).toBe(critical.length + 2);
    });

    test("a non-critical frame that does not fit even after the drops is refused", () => {
      using s = backend.open();
      const { outbox } = s.stores;
      const told: (OutboxDrop | null)[] = [];
      outbox.append("crit-1", true, 12); // 6
      outbox.append("crit-2", true, 12); // 6: full of critical frames
      outbox.append("output", false, 12, (d) => told.push(d));
      expect(told).toEqual([{ frames: 0, bytes: 0, refused: 6 }]);
      expect(frames(outbox.peekAfter(0, 10))).toEqual(["crit-1", "crit-2"]);
      expect(outbox.stats()).toEqual({ frames: 2, bytes: 12 });
      // Droppable frames go first; when that is still not enough the frame is refused too.
      outbox.append("n", false, 14); // 13: fits
      outbox.append("too big", false, 14, (d) => told.push(d));
      expect(told[1]).toEqual({ frames: 1, bytes: 1, refused: 7 });
      expect(frames(outbox.peekAfter(0, 10))).toEqual(["crit-1", "crit-2"]);
      expect(outbox.stats()).toEqual({ frames: 2, bytes: 12 });
    });

    test("a drop larger than one scan batch stops at the first frame that reaches the target", () => {
      using s = backend.open();
      const { outbox } = s.stores;
      for (let i = 0; i < 600; i++) outbox.append("x".repeat(10), false, NO_LIMIT);
      const told: (OutboxDrop | null)[] = [];
      // 6000 + 1 - 1000 = 5001 over: 501 frames of 10 bytes go.
      outbox.append("y", false, 1000, (d) => told.push(d));
      expect(told).toEqual([{ frames: 501, bytes: 5010, refused: 0 }]);
      expect(outbox.stats()).toEqual({ frames: 100, bytes: 991 });
      expect(outbox.peekAfter(0, 200).length).toBe(100);
      expect(outbox.peekAfter(0, 200).at(-1)?.frame).toBe("y");
    });
  });
}

describe("OutboxStore (SQLite only)", () => {
  test("reopening restores stats and order from the table", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file);
      for (let i = 0; i < 50; i++) db.stores.outbox.append(`f${i}`, i % 2 === 0, NO_LIMIT);
      // f0..f49 take 140 bytes; one more byte over the budget drops f1 (the oldest non-critical).
      const bytes = db.stores.outbox.stats().bytes;
      db.stores.outbox.append("z", true, bytes);
    }
    using db = openStores(file);
    const entries = db.stores.outbox.peekAfter(0, 100);
    expect(db.stores.outbox.stats()).toEqual({
      frames: 50,
      bytes: entries.reduce((n, e) => n + e.bytes, 0),
    });
    expect(frames(entries).slice(0, 3)).toEqual(["f0", "f2", "f3"]);
    expect(entries.at(-1)?.frame).toBe("z");
  });

  test("stats always equal what the table holds", () => {
    using db = openStores();
    const { outbox } = db.stores;
    const table = () =>
      row<{ frames: number; bytes: number }>(
        db.sqlite,
        "SELECT COUNT(*) AS frames, COALESCE(SUM(bytes), 0) AS bytes FROM outbox",
      );
    for (let i = 0; i < 300; i++) outbox.append(`frame-${i}`, i % 7 === 0, 1500);
    expect(outbox.stats()).toEqual(table());
    const some = outbox.peekAfter(0, 40).at(-1);
    if (some === undefined) throw new Error("expected entries");
    outbox.markSent(some.id);
    // The sent rows go with the next append, which the limit also sees.
    outbox.append("last", false, 1500);
    expect(outbox.stats()).toEqual(table());
    expect(outbox.stats().bytes).toBeLessThanOrEqual(1500);
  });
});

describe("OutboxStore: sent rows deleted with the next append (SQLite, batched)", () => {
  /** A relay process on the file: its outbox over a write batch, sending to `sent`. */
  const boot = (path: string, sent: string[]) => {
    const db = openBatched({ path });
    const sink = {
      send: (text: string): SendResult => {
        sent.push(text);
        return "sent";
      },
    };
    const log = new FakeLog();
    const outbox = new UpstreamOutbox(sink, db.stores.outbox, NO_LIMIT, db.clock, log, (fn) =>
      db.stores.afterCommit(fn),
    );
    return { db, outbox };
  };

  test("a crash between the send and the commit of its delete sends the row again: a duplicate, never a loss", () => {
    using dir = tempDir();
    const path = dir.file("relay.db");
    const sent: string[] = [];
    const first = boot(path, sent);
    first.outbox.onAuthenticated();
    first.outbox.forward("taskComplete-1", true);
    first.db.endTurn();
    expect(sent).toEqual(["taskComplete-1"]);
    expect(first.outbox.stats()).toEqual({ frames: 0, bytes: 0, waiting: 0 });
    // kill -9 before any other commit: the row is still in the file.
    first.db.close();

    const second = boot(path, sent);
    expect(second.outbox.stats()).toEqual({ frames: 1, bytes: 14, waiting: 1 });
    second.outbox.onAuthenticated();
    expect(sent).toEqual(["taskComplete-1", "taskComplete-1"]);
    // This time the fallback timer writes the delete before the crash.
    second.db.clock.advance(SENT_DELETE_MS);
    second.db.endTurn();
    second.db.close();

    const third = boot(path, sent);
    expect(third.outbox.stats()).toEqual({ frames: 0, bytes: 0, waiting: 0 });
    third.outbox.onAuthenticated();
    expect(sent).toHaveLength(2);
    third.db.close();
  });

  test("marked sent: not counted at once, deleted by the next append, not by other writes", () => {
    using db = openBatched();
    const { outbox, meta } = db.stores;
    for (const f of ["a", "bb", "ccc"]) outbox.append(f, true, NO_LIMIT);
    db.endTurn();
    const ids = outbox.peekAfter(0, 10).map((e) => e.id);
    outbox.markSent(ids[1] ?? 0);
    const table = () => row<{ n: number }>(db.sqlite, "SELECT COUNT(*) AS n FROM outbox").n;
    expect({ stats: outbox.stats(), table: table(), scheduled: db.scheduled }).toEqual({
      stats: { frames: 1, bytes: 3 },
      table: 3,
      scheduled: 0,
    });
    // Another table's write: its commit does not carry the delete (no outbox page in it).
    meta.set("k", "v");
    db.endTurn();
    expect(table()).toBe(3);
    outbox.append("dddd", true, NO_LIMIT);
    db.endTurn();
    expect({ stats: outbox.stats(), table: table() }).toEqual({
      stats: { frames: 2, bytes: 7 },
      table: 2,
    });
    // Already carried: nothing left to write on its own.
    expect(outbox.deleteSent()).toBe(false);
    outbox.markSent(ids[2] ?? 0);
    expect(outbox.deleteSent()).toBe(true);
    db.endTurn();
    expect({ stats: outbox.stats(), table: table() }).toEqual({
      stats: { frames: 1, bytes: 4 },
      table: 1,
    });
  });

  test("a rolled-back append keeps its delete for the retry: the sent rows go once it commits", () => {
    using db = openBatched({ retryBaseMs: 10 });
    const { outbox } = db.stores;
    for (const f of ["a", "bb"]) outbox.append(f, true, NO_LIMIT);
    db.endTurn();
    const ids = outbox.peekAfter(0, 10).map((e) => e.id);
    outbox.markSent(ids[1] ?? 0);
    const table = () => row<{ n: number }>(db.sqlite, "SELECT COUNT(*) AS n FROM outbox").n;
    db.tx.failCommits = 1;
    outbox.append("ccc", true, NO_LIMIT);
    db.endTurn();
    expect([table(), outbox.stats()]).toEqual([2, { frames: 0, bytes: 0 }]);
    db.clock.advance(10);
    db.endTurn();
    expect([table(), outbox.stats(), frames(outbox.peekAfter(0, 10))]).toEqual([
      1,
      { frames: 1, bytes: 3 },
      ["ccc"],
    ]);
  });
});
