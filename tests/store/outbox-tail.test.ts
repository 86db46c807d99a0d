import { describe, expect, test } from "bun:test";
import type { OutboxEntry } from "../../src/core/ports.ts";
import { Prng } from "../../src/simulation/prng.ts";
import { OutboxTail } from "../../src/store/outbox-tail.ts";
import { openBatched, rows } from "./helpers.ts";

const entry = (id: number, bytes = 1, critical = true): OutboxEntry => ({
  id,
  frame: `f${id}`,
  bytes,
  critical,
});
const ids = (entries: OutboxEntry[] | null) => entries?.map((e) => e.id) ?? null;

describe("OutboxTail", () => {
  test("answers only for ids it holds every row of; older cursors go to the table", () => {
    const tail = new OutboxTail(5);
    for (const id of [5, 6, 7]) tail.push(entry(id));
    expect(ids(tail.peekAfter(4, 10))).toEqual([5, 6, 7]);
    expect(ids(tail.peekAfter(5, 1))).toEqual([6]);
    expect(ids(tail.peekAfter(7, 10))).toEqual([]);
    // Row 4 may be in the table: the tail does not know it.
    expect(tail.peekAfter(3, 10)).toBeNull();
  });

  test("rows marked sent leave it, with their count and size", () => {
    const tail = new OutboxTail(1);
    for (const id of [1, 2, 3]) tail.push(entry(id, id * 10));
    expect(tail.takeThrough(0, 2)).toEqual({ frames: 2, bytes: 30 });
    expect(ids(tail.peekAfter(2, 10))).toEqual([3]);
    expect(tail.takeThrough(2, 3)).toEqual({ frames: 1, bytes: 30 });
    expect(ids(tail.peekAfter(3, 10))).toEqual([]);
  });

  test("over its bound it forgets everything and holds again from the next row", () => {
    const tail = new OutboxTail(1);
    tail.push(entry(1, 600 * 1024));
    tail.push(entry(2, 600 * 1024));
    expect(tail.peekAfter(0, 10)).toBeNull();
    tail.push(entry(3));
    expect(ids(tail.peekAfter(2, 10))).toEqual([3]);
    // Sent through 2 from the table: not counted by the tail, which never held them all.
    expect(tail.takeThrough(0, 2)).toBeNull();
  });

  test("a drop removes only the non-critical rows up to its id", () => {
    const tail = new OutboxTail(1);
    for (const e of [entry(1, 1, false), entry(2, 1, true), entry(3, 1, false), entry(4, 1, false)])
      tail.push(e);
    tail.dropDroppableThrough(3);
    expect(ids(tail.peekAfter(0, 10))).toEqual([2, 4]);
  });
});

/**
 * The SQLite outbox against the table itself, through random appends (some
 * large enough to make the size limit drop rows, some making the tail
 * overflow), drains, failed commits and retries: what `peekAfter` and `stats`
 * answer, from the tail or not, is always what the table holds.
 */
describe("OutboxStore with its tail, against the table", () => {
  for (const seed of [1, 2, 3, 4]) {
    test(`seed ${seed}: peeks and stats equal the table after every turn`, () => {
      const prng = new Prng(seed);
      using db = openBatched({ retryBaseMs: 1, retryMaxMs: 1 });
      const { outbox } = db.stores;
      // Two seeds with a small limit (drops), two with a large one (tail overflows).
      const maxBytes = seed <= 2 ? 64 * 1024 : 8 * 1024 * 1024;
      let sent = 0;
      let n = 0;
      for (let step = 0; step < 400; step++) {
        for (let k = prng.int(0, 40); k > 0; k--) {
          const size = prng.chance(0.05) ? prng.int(5_000, 40_000) : prng.int(1, 300);
          outbox.append(`${n++}`.padEnd(size, "x"), prng.chance(0.3), maxBytes);
        }
        if (prng.chance(0.1)) db.tx.failCommits = 1;
        db.endTurn();
        if (!db.batch.status.ok) {
          db.clock.advance(1);
          db.endTurn();
        }
        expect(db.batch.status.ok).toBe(true);
        const table = rows<Omit<OutboxEntry, "critical"> & { critical: number }>(
          db.sqlite,
          `SELECT id, frame, bytes, critical FROM outbox WHERE id > ${sent} ORDER BY id`,
        ).map((r) => ({ ...r, critical: r.critical === 1 }));
        expect(outbox.stats()).toEqual({
          frames: table.length,
          bytes: table.reduce((sum, r) => sum + r.bytes, 0),
        });
        if (prng.chance(0.4)) {
          const limit = prng.int(1, 200);
          const batch = outbox.peekAfter(sent, limit);
          expect(batch).toEqual(table.slice(0, limit));
          const last = batch.at(-1);
          if (last !== undefined) {
            outbox.markSent(last.id);
            sent = last.id;
          }
        }
        if (prng.chance(0.05)) outbox.deleteSent();
      }
    });
  }
});
