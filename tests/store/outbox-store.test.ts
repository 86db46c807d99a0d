import { describe, expect, test } from "bun:test";
import { openStores, tempDir } from "./helpers.ts";

const frames = (entries: { frame: string }[]) => entries.map((e) => e.frame);

describe("OutboxStore", () => {
  test("append and peek keep arrival order and measure UTF-8 bytes", () => {
    using db = openStores();
    const { outbox } = db.stores;
    outbox.append("first", false);
    outbox.append("é€", true);
    outbox.append("third", false);
    const [a, b, c] = outbox.peek(10);
    expect([a, b, c]).toEqual([
      { id: expect.any(Number), frame: "first", bytes: 5, critical: false },
      { id: expect.any(Number), frame: "é€", bytes: 5, critical: true },
      { id: expect.any(Number), frame: "third", bytes: 5, critical: false },
    ]);
    expect((a?.id ?? 0) < (b?.id ?? 0) && (b?.id ?? 0) < (c?.id ?? 0)).toBe(true);
    expect(frames(outbox.peek(2))).toEqual(["first", "é€"]);
    expect(outbox.stats()).toEqual({ frames: 3, bytes: 15 });
  });

  test("deleteThrough removes everything up to the id and updates stats", () => {
    using db = openStores();
    const { outbox } = db.stores;
    for (const f of ["a", "bb", "ccc", "dddd"]) outbox.append(f, f === "bb");
    const second = outbox.peek(2)[1];
    if (second === undefined) throw new Error("expected two entries");
    outbox.deleteThrough(second.id);
    expect(frames(outbox.peek(10))).toEqual(["ccc", "dddd"]);
    expect(outbox.stats()).toEqual({ frames: 2, bytes: 7 });
    outbox.deleteThrough(second.id);
    expect(outbox.stats()).toEqual({ frames: 2, bytes: 7 });
    outbox.deleteThrough(Number.MAX_SAFE_INTEGER);
    expect([outbox.peek(10), outbox.stats()]).toEqual([[], { frames: 0, bytes: 0 }]);
  });

  test("dropOldestNonCritical frees at least the bytes asked for, oldest first", () => {
    using db = openStores();
    const { outbox } = db.stores;
    outbox.append("c1", true); // 2
    outbox.append("n1--", false); // 4
    outbox.append("c2", true); // 2
    outbox.append("n2--", false); // 4
    outbox.append("n3--", false); // 4
    expect(outbox.dropOldestNonCritical(5)).toEqual({ frames: 2, bytes: 8 });
    expect(frames(outbox.peek(10))).toEqual(["c1", "c2", "n3--"]);
    expect(outbox.stats()).toEqual({ frames: 3, bytes: 8 });
    expect(outbox.dropOldestNonCritical(0)).toEqual({ frames: 0, bytes: 0 });
  });

  test("dropOldestNonCritical never drops critical frames, even when asked for more", () => {
    using db = openStores();
    const { outbox } = db.stores;
    for (let i = 0; i < 1000; i++) outbox.append(`frame-${i}`, i % 3 === 0);
    const critical = outbox.peek(1000).filter((e) => e.critical);
    const dropped = outbox.dropOldestNonCritical(Number.MAX_SAFE_INTEGER);
    const left = outbox.peek(1000);
    expect(dropped.frames).toBe(1000 - critical.length);
    expect(left).toEqual(critical);
    expect(outbox.stats()).toEqual({
      frames: critical.length,
      bytes: critical.reduce((n, e) => n + e.bytes, 0),
    });
    expect(outbox.dropOldestNonCritical(1)).toEqual({ frames: 0, bytes: 0 });
  });

  test("a drop larger than one scan batch stops at the first frame that reaches the target", () => {
    using db = openStores();
    const { outbox } = db.stores;
    for (let i = 0; i < 600; i++) outbox.append("x".repeat(10), false);
    expect(outbox.dropOldestNonCritical(5001)).toEqual({ frames: 501, bytes: 5010 });
    expect(outbox.stats()).toEqual({ frames: 99, bytes: 990 });
    expect(outbox.peek(200).length).toBe(99);
  });

  test("reopening restores stats and order from the table", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file);
      for (let i = 0; i < 50; i++) db.stores.outbox.append(`f${i}`, i % 2 === 0);
      db.stores.outbox.dropOldestNonCritical(1);
    }
    using db = openStores(file);
    const entries = db.stores.outbox.peek(100);
    expect(db.stores.outbox.stats()).toEqual({
      frames: 49,
      bytes: entries.reduce((n, e) => n + e.bytes, 0),
    });
    expect(frames(entries).slice(0, 3)).toEqual(["f0", "f2", "f3"]);
  });
});
