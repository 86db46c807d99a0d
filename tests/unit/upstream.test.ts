import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/core/manual-clock.ts";
import { Upstream, type UpstreamEvent, type UpstreamOptions } from "../../src/core/upstream.ts";
import { MAX_CAPACITY } from "../../src/protocol/messages.ts";
import { FakeLog, FakeTransport, LINK_OPTIONS, MemoryOutboxStore } from "./fakes.ts";

const LIMIT = 1000;

function setup(over: Partial<UpstreamOptions> = {}, store = new MemoryOutboxStore()) {
  const clock = new ManualClock();
  const transport = new FakeTransport();
  const bugs: string[] = [];
  const upstream = new Upstream(
    {
      ...LINK_OPTIONS,
      identity: { apiKey: "relay-key", machineId: "makima-relay-1", hostname: "edge-1" },
      capacity: "auto",
      outboxMaxBytes: LIMIT,
      ...over,
    },
    {
      transport: transport.connect,
      outboxStore: store,
      afterCommit: (fn) => fn(),
      clock,
      jitter: () => 0.5,
      log: new FakeLog(),
      reportBug: (where) => bugs.push(where),
    },
  );
  const events: UpstreamEvent[] = [];
  let heartbeat = ["t1"];
  let throwOnFrame = false;
  upstream.listen({
    upstreamEvent: (event) => {
      events.push(event);
      if (throwOnFrame && event.kind === "frame") throw new Error("bug in a handler");
    },
    heartbeatTasks: () => heartbeat,
  });
  const controls = {
    setHeartbeat: (ids: string[]) => {
      heartbeat = ids;
    },
    throwOnFrame: () => {
      throwOnFrame = true;
    },
  };
  return { clock, transport, upstream, events, bugs, store, ...controls };
}

/** A status change of exactly `n` bytes (a frame the outbox may not drop). */
const critical = (i: number, n = 400): string => {
  const base = `{"type":"taskStatusChange","taskId":"t","newStatus":"s${i}","pad":""}`;
  return base.replace('"pad":""', `"pad":"${"x".repeat(n - base.length)}"`);
};

describe("Upstream: the link and the outbox as one part", () => {
  test("tells its listener what happens, as one event union, in order", () => {
    const { upstream, transport, events } = setup();
    upstream.forward('{"type":"taskOutput","taskId":"t","n":1}', false);
    upstream.start();
    transport.last.open();
    transport.last.authenticated("srv-1");
    transport.last.message({ type: "spawnTask", taskId: "t2", taskName: "n" });
    transport.last.serverClose(1006, "gone");
    expect(events).toEqual([
      { kind: "authenticated", daemonId: "srv-1" },
      { kind: "frame", text: '{"type":"spawnTask","taskId":"t2","taskName":"n"}' },
      { kind: "down" },
    ]);
    // What waited during the outage went out as soon as the link authenticated.
    expect(transport.last.sent.slice(1)).toEqual(['{"type":"taskOutput","taskId":"t","n":1}']);
  });

  test("backpressure on the socket is told as congestion, and its end too", () => {
    const { upstream, transport, events } = setup();
    upstream.start();
    transport.last.open();
    transport.last.authenticated();
    transport.last.sendResult = "backpressure";
    upstream.forward('{"type":"taskOutput","n":1}', false);
    transport.last.sendResult = "sent";
    transport.last.drain();
    expect(events.filter((e) => e.kind === "congested")).toEqual([
      { kind: "congested", congested: true },
      { kind: "congested", congested: false },
    ]);
  });

  test("an outbox over its limit at start (a restart during an outage) is told on listen", () => {
    const store = new MemoryOutboxStore();
    for (let i = 0; i < 3; i++) store.append(critical(i), true, LIMIT * 10);
    const { events } = setup({}, store);
    expect(events).toEqual([{ kind: "outboxFull", full: true }]);
  });

  test("auto capacity: authenticate carries the last sum told, capped; a capacityUpdate follows changes", () => {
    const { upstream, transport } = setup();
    upstream.advertiseCapacity(7);
    upstream.start();
    transport.last.open();
    expect(transport.last.frames()[0]).toMatchObject({
      type: "authenticate",
      maxConcurrentTasks: 7,
    });
    transport.last.authenticated();
    upstream.advertiseCapacity(MAX_CAPACITY * 2);
    expect(transport.last.frames().at(-1)).toEqual({
      type: "capacityUpdate",
      maxConcurrentTasks: MAX_CAPACITY,
    });
  });

  test("auto capacity: a change during the handshake is told once the link is open", () => {
    const { upstream, transport } = setup();
    upstream.advertiseCapacity(0);
    upstream.start();
    transport.last.open();
    // Daemons attach while the server has not answered authenticate yet.
    upstream.advertiseCapacity(9);
    transport.last.authenticated();
    expect(transport.last.frames().map((f) => [f.type, f.maxConcurrentTasks])).toEqual([
      ["authenticate", 0],
      ["capacityUpdate", 9],
    ]);
    upstream.advertiseCapacity(9);
    expect(transport.last.frames()).toHaveLength(2);
  });

  test("a fixed capacity is what authenticate says, whatever the daemons add up to", () => {
    const { upstream, transport } = setup({ capacity: 12 });
    upstream.advertiseCapacity(3);
    upstream.start();
    transport.last.open();
    transport.last.authenticated();
    upstream.advertiseCapacity(5);
    expect(transport.last.frames().map((f) => [f.type, f.maxConcurrentTasks])).toEqual([
      ["authenticate", 12],
    ]);
  });

  test("the heartbeat lists what the listener says; a throwing listener is a reported bug, not a dead link", () => {
    const { upstream, transport, clock, bugs, setHeartbeat, throwOnFrame } = setup();
    upstream.start();
    transport.last.open();
    transport.last.authenticated();
    setHeartbeat(["a", "b"]);
    clock.advance(30_000);
    expect(transport.last.frames().at(-1)).toEqual({ type: "heartbeat", activeTasks: ["a", "b"] });
    throwOnFrame();
    transport.last.message({ type: "cancelTask", taskId: "a" });
    expect(bugs).toEqual(["upstream frame"]);
    expect(upstream.link.authenticated).toBe(true);
  });
});
