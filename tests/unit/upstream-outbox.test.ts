import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/core/manual-clock.ts";
import type { SendResult } from "../../src/core/ports.ts";
import { SENT_DELETE_MS, UpstreamOutbox } from "../../src/core/upstream-outbox.ts";
import { createWriteBatch } from "../../src/store/write-batch.ts";
import { createMemoryStores, FakeLog, MemoryOutboxStore } from "./fakes.ts";

/** A budget nothing here reaches. */
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

class FakeSink {
  readonly sent: string[] = [];
  readonly results: SendResult[] = [];
  defaultResult: SendResult = "sent";
  send(text: string): SendResult {
    const r = this.results.shift() ?? this.defaultResult;
    if (r !== "dropped") this.sent.push(text);
    return r;
  }
}

function setup(maxBytes = 1_000_000, store = new MemoryOutboxStore()) {
  const sink = new FakeSink();
  const clock = new ManualClock();
  const log = new FakeLog();
  const flow: boolean[] = [];
  const outbox = new UpstreamOutbox(sink, store, maxBytes, clock, log, undefined, {
    flowChanged: (congested) => flow.push(congested),
    fullChanged: () => {},
  });
  return { sink, store, clock, log, outbox, flow };
}

/** A frame of exactly `n` bytes, recognisable by its tag. */
const frame = (tag: string, n = 40): string => {
  const base = `{"type":"taskOutput","t":"${tag}","p":""}`;
  return base.replace('"p":""', `"p":"${"x".repeat(n - base.length)}"`);
};

describe("UpstreamOutbox", () => {
  test("frame() helper is exact", () => {
    expect(Buffer.byteLength(frame("a", 40))).toBe(40);
  });

  test("sends directly when ready and nothing is waiting", () => {
    const { sink, store, outbox } = setup();
    outbox.onAuthenticated();
    outbox.forward("a", false);
    outbox.forward("b", true);
    expect(sink.sent).toEqual(["a", "b"]);
    expect(store.stats()).toEqual({ frames: 0, bytes: 0 });
  });

  test("appends while not ready (before the first handshake and after onDown)", () => {
    const { sink, store, outbox } = setup();
    outbox.forward("a", false);
    outbox.onAuthenticated();
    outbox.onDown();
    outbox.forward("b", true);
    expect(store.frames()).toEqual(["b"]);
    expect(sink.sent).toEqual(["a"]);
  });

  test("a send dropped by a dying socket is kept, not lost", () => {
    const { sink, store, outbox } = setup();
    outbox.onAuthenticated();
    sink.results.push("dropped");
    outbox.forward("a", true);
    expect(store.frames()).toEqual(["a"]);
    outbox.forward("b", false); // behind the backlog, not around it
    expect(sink.sent).toEqual([]);
    expect(store.frames()).toEqual(["a", "b"]);
  });

  test("drains in order, before newer frames, after onAuthenticated", () => {
    const { sink, store, outbox } = setup();
    for (const f of ["1", "2", "3"]) outbox.forward(f, f === "2");
    expect(sink.sent).toEqual([]);
    outbox.onAuthenticated();
    outbox.forward("4", false);
    expect(sink.sent).toEqual(["1", "2", "3", "4"]);
    expect(store.stats().frames).toBe(0);
  });

  test("a backlog left by a previous run (store not empty at start) drains first", () => {
    const store = new MemoryOutboxStore();
    store.append("old-1", true, NO_LIMIT);
    store.append("old-2", false, NO_LIMIT);
    const { sink, outbox } = setup(1_000_000, store);
    outbox.onAuthenticated();
    outbox.forward("new", false);
    expect(sink.sent).toEqual(["old-1", "old-2", "new"]);
  });

  test("stops at backpressure and resumes on onDrain; newer frames wait their turn", () => {
    const { sink, store, outbox } = setup();
    for (const f of ["1", "2", "3", "4"]) outbox.forward(f, false);
    sink.results.push("sent", "backpressure");
    outbox.onAuthenticated();
    expect(sink.sent).toEqual(["1", "2"]); // "2" was accepted into the socket buffer
    expect(store.unsent()).toEqual(["3", "4"]);
    outbox.forward("5", true);
    expect(sink.sent).toEqual(["1", "2"]);
    outbox.onDrain();
    expect(sink.sent).toEqual(["1", "2", "3", "4", "5"]);
    expect(store.unsent()).toEqual([]);
  });

  test("direct send hitting backpressure blocks later frames until drain", () => {
    const { sink, store, outbox } = setup();
    outbox.onAuthenticated();
    sink.results.push("backpressure");
    outbox.forward("a", false);
    outbox.forward("b", false);
    expect(sink.sent).toEqual(["a"]);
    expect(store.frames()).toEqual(["b"]);
    outbox.onDrain();
    expect(sink.sent).toEqual(["a", "b"]);
  });

  test("a large backlog drains in batches, yielding between them", () => {
    const { sink, store, outbox, clock } = setup();
    for (let i = 0; i < 1200; i++) outbox.forward(`f${i}`, false);
    outbox.onAuthenticated();
    expect(sink.sent.length).toBe(512);
    outbox.forward("newest", false);
    expect(sink.sent.length).toBe(512);
    clock.advance(0);
    clock.advance(0);
    expect(sink.sent.length).toBe(1201);
    expect(sink.sent).toEqual([...Array.from({ length: 1200 }, (_, i) => `f${i}`), "newest"]);
    expect(store.stats().frames).toBe(0);
  });

  test("going down mid-drain keeps the rest for the next handshake", () => {
    const { sink, store, outbox } = setup();
    for (const f of ["1", "2", "3"]) outbox.forward(f, true);
    // The socket dies after the first frame: every later send is dropped.
    sink.results.push("sent");
    sink.defaultResult = "dropped";
    outbox.onAuthenticated();
    outbox.onDown();
    expect(sink.sent).toEqual(["1"]);
    expect(store.unsent()).toEqual(["2", "3"]);
    sink.defaultResult = "sent";
    outbox.onAuthenticated();
    expect(sink.sent).toEqual(["1", "2", "3"]);
  });

  test("size limit: drops oldest non-critical first, never critical; counters right", () => {
    const { store, outbox, log, sink } = setup(100);
    outbox.forward(frame("a"), false); // 40
    outbox.forward(frame("b"), true); // 80
    outbox.forward(frame("c"), false); // 120 > 100: a goes
    expect(store.frames()).toEqual([frame("b"), frame("c")]);
    expect(outbox.counters).toEqual({ droppedFrames: 1, droppedBytes: 40 });

    outbox.forward(frame("d"), true); // c goes
    expect(store.frames()).toEqual([frame("b"), frame("d")]);
    expect(outbox.counters).toEqual({ droppedFrames: 2, droppedBytes: 80 });

    outbox.forward(frame("e"), true); // nothing droppable: critical is kept anyway
    expect(store.frames()).toEqual([frame("b"), frame("d"), frame("e")]);
    expect(outbox.counters).toEqual({ droppedFrames: 2, droppedBytes: 80 });

    outbox.forward(frame("f"), false); // full of critical frames: the new output frame goes
    expect(store.frames()).toEqual([frame("b"), frame("d"), frame("e")]);
    expect(outbox.counters).toEqual({ droppedFrames: 3, droppedBytes: 120 });
    expect(log.events("outbox_drop").length).toBe(3);

    outbox.onAuthenticated();
    expect(sink.sent).toEqual([frame("b"), frame("d"), frame("e")]);
  });

  test("one big frame may push out several small ones", () => {
    const { store, outbox } = setup(200);
    for (const t of ["a", "b"]) outbox.forward(frame(t, 60), false);
    outbox.forward(frame("c", 50), true);
    outbox.forward(frame("big", 130), false); // 170 + 130 - 200 = 100 over: a and b go
    expect(store.frames()).toEqual([frame("c", 50), frame("big", 130)]);
    expect(outbox.counters).toEqual({ droppedFrames: 2, droppedBytes: 120 });
    expect(outbox.stats()).toEqual({ frames: 2, bytes: 180, waiting: 2 });
  });

  test("after drops, the backlog count still lets the outbox go direct once empty", () => {
    const { store, outbox, sink } = setup(100);
    for (const t of ["a", "b", "c", "d"]) outbox.forward(frame(t), false);
    expect(store.stats().frames).toBe(2);
    outbox.onAuthenticated();
    expect(sink.sent).toEqual([frame("c"), frame("d")]);
    outbox.forward("direct", false);
    expect(sink.sent.at(-1)).toBe("direct");
    expect(store.stats().frames).toBe(0);
  });
});

describe("UpstreamOutbox flow control", () => {
  test("congested while backpressured or draining a backlog, never during an outage", () => {
    const { sink, outbox, flow } = setup();
    outbox.forward("during outage", false);
    expect(flow).toEqual([]);
    outbox.onAuthenticated();
    expect(sink.sent).toEqual(["during outage"]);
    expect(flow).toEqual([]);
    sink.results.push("backpressure");
    outbox.forward("fills the buffer", false);
    outbox.forward("waits", false);
    expect(flow).toEqual([true]);
    outbox.onDrain();
    expect(sink.sent).toEqual(["during outage", "fills the buffer", "waits"]);
    expect(flow).toEqual([true, false]);
    sink.results.push("backpressure");
    outbox.forward("again", false);
    outbox.onDown();
    expect(flow).toEqual([true, false, true, false]);
  });
});

/**
 * The outbox over memory stores behind a write batch: appends commit at the
 * end of the turn (`endTurn`), and a commit can be made to fail (before the
 * memory stores apply anything, the only way they can fail).
 */
function batched(maxBytes = 1_000_000) {
  const sink = new FakeSink();
  const clock = new ManualClock();
  const log = new FakeLog();
  const turn: Array<() => void> = [];
  const bugs: unknown[] = [];
  let failing = false;
  let commits = 0;
  const batch = createWriteBatch(
    {
      begin: () => {
        if (failing) throw Object.assign(new Error("disk I/O error"), { code: "SQLITE_IOERR" });
      },
      commit: () => {
        commits += 1;
      },
      rollback: () => {},
    },
    { clock, schedule: (fn) => turn.push(fn), onBug: (err) => bugs.push(err), retryBaseMs: 50 },
  );
  const stores = createMemoryStores(batch);
  const outbox = new UpstreamOutbox(sink, stores.outbox, maxBytes, clock, log, stores.afterCommit);
  return {
    sink,
    clock,
    log,
    bugs,
    batch,
    store: stores.outbox,
    outbox,
    endTurn: () => {
      for (const fn of turn.splice(0)) fn();
    },
    /** COMMITs so far, and whether one is scheduled for the end of the turn. */
    commits: () => ({ commits, scheduled: turn.length > 0 }),
    setFailing: (on: boolean) => {
      failing = on;
    },
  };
}

describe("UpstreamOutbox behind a write batch", () => {
  test("a critical frame leaves only once its append is committed, even on a ready, idle link", () => {
    const { sink, outbox, store, endTurn } = batched();
    outbox.onAuthenticated();
    outbox.forward("crit", true);
    expect(sink.sent).toEqual([]);
    expect(outbox.stats()).toEqual({ frames: 0, bytes: 0, waiting: 1 });
    endTurn();
    expect(sink.sent).toEqual(["crit"]);
    // Sent: no longer counted, though its row goes only with the next commit.
    expect(outbox.stats()).toEqual({ frames: 0, bytes: 0, waiting: 0 });
    expect(store.frames()).toEqual(["crit"]);
  });

  test("an output frame on a ready, idle link goes straight out; behind a waiting critical frame it keeps its place", () => {
    const { sink, outbox, endTurn } = batched();
    outbox.onAuthenticated();
    outbox.forward("out-1", false);
    expect(sink.sent).toEqual(["out-1"]);
    outbox.forward("crit", true);
    outbox.forward("out-2", false);
    expect(sink.sent).toEqual(["out-1"]);
    endTurn();
    expect(sink.sent).toEqual(["out-1", "crit", "out-2"]);
  });

  test("committed rows go at once, an append not committed yet once it is: whole and in order", () => {
    const { sink, outbox, endTurn } = batched();
    outbox.forward("a", false);
    outbox.forward("b", true);
    endTurn();
    outbox.forward("c", false);
    outbox.onAuthenticated();
    expect(sink.sent).toEqual(["a", "b"]);
    endTurn();
    expect(sink.sent).toEqual(["a", "b", "c"]);
    expect(outbox.stats().waiting).toBe(0);
  });

  test("rows already sent whose delete is not committed yet are never sent again", () => {
    const { sink, outbox, store, clock, batch, endTurn, setFailing } = batched();
    outbox.forward("a", true);
    outbox.forward("b", true);
    endTurn();
    outbox.onAuthenticated();
    expect(sink.sent).toEqual(["a", "b"]);
    // Their delete rides on the next commit, and that commit fails: the rows are still there.
    outbox.forward("c", true);
    setFailing(true);
    endTurn();
    expect(batch.status.ok).toBe(false);
    expect(store.frames()).toEqual(["a", "b"]);
    outbox.onDrain();
    expect(sink.sent).toEqual(["a", "b"]);
    setFailing(false);
    clock.advance(50);
    expect(batch.status.ok).toBe(true);
    expect(sink.sent).toEqual(["a", "b", "c"]);
    // c's delete waits for a later commit, or the fallback timer (armed when a and b went).
    expect(store.frames()).toEqual(["c"]);
    clock.advance(SENT_DELETE_MS - 50);
    endTurn();
    expect(store.frames()).toEqual([]);
    expect(outbox.stats()).toEqual({ frames: 0, bytes: 0, waiting: 0 });
  });

  test("the delete of sent rows asks for no commit: it rides on the next append, not on other writes", () => {
    const { sink, outbox, store, batch, endTurn, commits } = batched();
    outbox.onAuthenticated();
    outbox.forward("crit-1", true);
    endTurn();
    expect(sink.sent).toEqual(["crit-1"]);
    expect(commits()).toEqual({ commits: 1, scheduled: false });
    expect(store.frames()).toEqual(["crit-1"]);
    // Another write (the next spawn's task row, say): its commit has no outbox page to carry it.
    batch.write(() => undefined);
    endTurn();
    expect(commits()).toEqual({ commits: 2, scheduled: false });
    expect(store.frames()).toEqual(["crit-1"]);
    // The next append carries it: no commit of its own.
    outbox.forward("crit-2", true);
    endTurn();
    expect({ sent: sink.sent, frames: store.frames() }).toEqual({
      sent: ["crit-1", "crit-2"],
      frames: ["crit-2"],
    });
    expect(commits()).toEqual({ commits: 3, scheduled: false });
  });

  test("with nothing else to commit, the fallback timer writes the delete within SENT_DELETE_MS", () => {
    const { sink, outbox, store, clock, endTurn, commits } = batched();
    outbox.onAuthenticated();
    outbox.forward("crit", true);
    endTurn();
    expect(sink.sent).toEqual(["crit"]);
    clock.advance(SENT_DELETE_MS - 1);
    expect(commits()).toEqual({ commits: 1, scheduled: false });
    clock.advance(1);
    expect(commits()).toEqual({ commits: 1, scheduled: true });
    endTurn();
    expect({ commits: commits(), frames: store.frames() }).toEqual({
      commits: { commits: 2, scheduled: false },
      frames: [],
    });
    // Nothing sent since: no timer, no commit.
    clock.advance(10 * SENT_DELETE_MS);
    expect(commits()).toEqual({ commits: 2, scheduled: false });
  });

  test("stop writes the pending delete, for the storage's final flush, and ends the timer", () => {
    const { sink, outbox, store, clock, batch, endTurn, commits } = batched();
    outbox.onAuthenticated();
    outbox.forward("crit", true);
    endTurn();
    expect(sink.sent).toEqual(["crit"]);
    outbox.stop();
    expect(batch.flush()).toBe(true);
    expect({ commits: commits().commits, frames: store.frames() }).toEqual({
      commits: 2,
      frames: [],
    });
    clock.advance(SENT_DELETE_MS);
    endTurn();
    expect(commits().commits).toBe(2);
  });

  test("stats never count a sent row, whether its delete is committed, waiting, or failing", () => {
    const { sink, outbox, store, clock, endTurn, setFailing } = batched();
    for (const t of ["a", "bb", "ccc"]) outbox.forward(t, true);
    endTurn();
    expect(outbox.stats()).toEqual({ frames: 3, bytes: 6, waiting: 3 });
    outbox.onAuthenticated();
    expect(sink.sent).toEqual(["a", "bb", "ccc"]);
    expect(outbox.stats()).toEqual({ frames: 0, bytes: 0, waiting: 0 });
    // The next commit fails (its append and the delete riding on it roll back).
    outbox.onDown();
    outbox.forward("dddd", true);
    setFailing(true);
    endTurn();
    expect(store.frames()).toEqual(["a", "bb", "ccc"]);
    expect(outbox.stats()).toEqual({ frames: 0, bytes: 0, waiting: 1 });
    setFailing(false);
    clock.advance(50);
    expect(store.frames()).toEqual(["dddd"]);
    expect(outbox.stats()).toEqual({ frames: 1, bytes: 4, waiting: 1 });
  });

  test("size-limit drops are counted once the append that caused them commits", () => {
    const { outbox, log, endTurn } = batched(100);
    for (const t of ["a", "b", "c"]) outbox.forward(frame(t), false);
    expect(outbox.counters).toEqual({ droppedFrames: 0, droppedBytes: 0 });
    expect(outbox.stats().waiting).toBe(3);
    endTurn();
    expect(outbox.counters).toEqual({ droppedFrames: 1, droppedBytes: 40 });
    expect(outbox.stats()).toEqual({ frames: 2, bytes: 80, waiting: 2 });
    expect(log.events("outbox_drop").length).toBe(1);
  });

  test("an append dropped as a bug does not stop the outbox: the rest drains and the count heals", () => {
    const { sink, outbox, bugs, endTurn } = batched();
    // Not a string: measuring it throws inside the append, a bug the batch drops.
    outbox.forward(123 as unknown as string, true);
    outbox.forward("next", true);
    endTurn();
    expect(bugs).toHaveLength(1);
    outbox.onAuthenticated();
    expect(sink.sent).toEqual(["next"]);
    expect(outbox.stats().waiting).toBe(0);
    // Healthy afterwards: frames still flow, direct and through the outbox.
    outbox.forward("direct", false);
    outbox.forward("crit", true);
    endTurn();
    expect(sink.sent).toEqual(["next", "direct", "crit"]);
  });
});
