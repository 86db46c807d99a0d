/**
 * The outbox limit is a limit for task results too: when frames it may not
 * drop fill it past its limit, the outbox says it is full and the relay stops
 * reading daemons (TCP holds the rest at the senders) until it drains back
 * within its limit. Output alone never fills it: the oldest output is dropped.
 * And a frame the peer announced it would refuse is never sent.
 */
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/core/manual-clock.ts";
import type { SendResult } from "../../src/core/ports.ts";
import { UpstreamOutbox } from "../../src/core/upstream-outbox.ts";
import { createWriteBatch } from "../../src/store/write-batch.ts";
import { createMemoryStores, FakeLog, MemoryOutboxStore } from "./fakes.ts";
import { DAEMON_TIMEOUT, relayHarness } from "./relay-harness.ts";

const LIMIT = 1000;

class Sink {
  readonly sent: string[] = [];
  maxBytes = Number.MAX_SAFE_INTEGER;
  send(text: string): SendResult {
    this.sent.push(text);
    return "sent";
  }
  fits(text: string): boolean {
    return Buffer.byteLength(text) <= this.maxBytes;
  }
}

/** A status change of exactly `n` bytes. */
const statusFrame = (i: number, n = 200): string => {
  const base = `{"type":"taskStatusChange","taskId":"t","newStatus":"s${i}","pad":""}`;
  return base.replace('"pad":""', `"pad":"${"x".repeat(n - base.length)}"`);
};

function setup(store = new MemoryOutboxStore()) {
  const sink = new Sink();
  const log = new FakeLog();
  const changes: boolean[] = [];
  const outbox = new UpstreamOutbox(sink, store, LIMIT, new ManualClock(), log, undefined, {
    flowChanged: () => {},
    fullChanged: (full) => changes.push(full),
  });
  return { sink, store, log, outbox, changes };
}

describe("UpstreamOutbox: full of frames it may not drop", () => {
  test("task results past the limit make it full, once; draining within the limit clears it", () => {
    const { sink, store, log, outbox, changes } = setup();
    const frames = Array.from({ length: 8 }, (_, i) => statusFrame(i));
    for (const f of frames.slice(0, 5)) outbox.forward(f, true);
    // 5 × 200 bytes: at the limit, not over it.
    expect([outbox.isFull, changes]).toEqual([false, []]);
    for (const f of frames.slice(5)) outbox.forward(f, true);
    expect([outbox.isFull, changes, store.stats().bytes]).toEqual([true, [true], 1600]);
    expect(log.events("outbox_full")).toHaveLength(1);
    // Nothing was dropped to get there, and nothing will be.
    expect(outbox.counters.droppedFrames).toBe(0);
    outbox.onAuthenticated();
    expect(sink.sent).toEqual(frames);
    expect([outbox.isFull, changes]).toEqual([false, [true, false]]);
    expect(log.events("outbox_full_cleared")).toHaveLength(1);
  });

  test("output alone never makes it full: the oldest output is dropped instead", () => {
    const { outbox, changes } = setup();
    for (let i = 0; i < 50; i++)
      outbox.forward(`{"type":"taskOutput","line":${i},"p":"${"x".repeat(150)}"}`, false);
    expect([outbox.isFull, changes]).toEqual([false, []]);
    expect(outbox.counters.droppedFrames).toBeGreaterThan(40);
  });

  test("a restart on an outbox already over its limit is full from the start (its owner reads isFull)", () => {
    const store = new MemoryOutboxStore();
    for (let i = 0; i < 6; i++) store.append(statusFrame(i), true, LIMIT);
    const { outbox, changes } = setup(store);
    expect([outbox.isFull, changes]).toEqual([true, []]);
  });

  test("behind a write batch it is judged on committed rows not sent yet: it clears once they are sent, before their delete commits", () => {
    const turn: Array<() => void> = [];
    const batch = createWriteBatch(
      { begin: () => {}, commit: () => {}, rollback: () => {} },
      { clock: new ManualClock(), schedule: (fn) => turn.push(fn) },
    );
    const endTurn = () => {
      for (const fn of turn.splice(0)) fn();
    };
    const stores = createMemoryStores(batch);
    const sink = new Sink();
    const changes: boolean[] = [];
    const outbox = new UpstreamOutbox(
      sink,
      stores.outbox,
      LIMIT,
      new ManualClock(),
      new FakeLog(),
      stores.afterCommit,
      { flowChanged: () => {}, fullChanged: (full) => changes.push(full) },
    );
    for (let i = 0; i < 6; i++) outbox.forward(statusFrame(i), true);
    expect(changes).toEqual([]); // not committed yet
    endTurn();
    expect(changes).toEqual([true]);
    outbox.onAuthenticated();
    expect(sink.sent).toHaveLength(6);
    // Sent: no longer held, though their delete waits for the next commit.
    expect(changes).toEqual([true, false]);
    expect(stores.outbox.entries).toHaveLength(6);
    // That commit deletes them ahead of its own append, which then fits.
    outbox.forward(statusFrame(6), true);
    endTurn();
    expect(changes).toEqual([true, false]);
    expect(stores.outbox.frames()).toEqual([statusFrame(6)]);
  });
});

describe("UpstreamOutbox: frames the peer would refuse", () => {
  test("a frame over the peer's limit is dropped and counted, direct or from the outbox; the rest goes on", () => {
    const { sink, outbox } = setup();
    sink.maxBytes = 100;
    const big = statusFrame(1, 150);
    outbox.forward("small-1", false);
    outbox.forward(big, true);
    outbox.forward("small-2", false);
    outbox.onAuthenticated();
    expect(sink.sent).toEqual(["small-1", "small-2"]);
    outbox.forward(`{"type":"taskOutput","p":"${"x".repeat(120)}"}`, false);
    outbox.forward("small-3", false);
    expect(sink.sent).toEqual(["small-1", "small-2", "small-3"]);
    expect(outbox.counters.droppedFrames).toBe(2);
    expect(outbox.stats()).toMatchObject({ frames: 0, waiting: 0 });
  });
});

describe("Relay: outbox full", () => {
  test("stops reading every daemon, says why in readiness, and resumes when it clears", () => {
    const h = relayHarness();
    h.relay.start();
    const a = h.daemon("a", 1);
    h.relay.setOutboxFull(true);
    expect([...h.paused]).toEqual([a.id]);
    expect(h.relay.readiness()).toEqual(["outbox full"]);
    // A daemon admitted meanwhile is not read either.
    const b = h.daemon("b", 1);
    expect([...h.paused].sort()).toEqual([a.id, b.id].sort());
    // Not read, so never silent.
    h.clock.advance(DAEMON_TIMEOUT * 3);
    expect([a.closed, b.closed]).toEqual([null, null]);
    h.relay.setOutboxFull(false);
    expect(h.paused.size).toBe(0);
    expect(h.relay.readiness()).toEqual([]);
    h.relay.stop();
  });

  test("with storage failing too, reading resumes only once both have cleared", () => {
    const h = relayHarness();
    const a = h.daemon("a", 1);
    h.relay.setOutboxFull(true);
    h.relay.storageChanged({
      ok: false,
      code: "SQLITE_FULL",
      error: "full",
      since: 0,
      attempts: 1,
      pendingWrites: 1,
    });
    h.relay.setOutboxFull(false);
    expect(h.paused.has(a.id)).toBe(true);
    h.relay.storageChanged({ ok: true });
    expect(h.paused.size).toBe(0);
  });
});
