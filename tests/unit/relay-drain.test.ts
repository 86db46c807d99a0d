/**
 * Relay.drainMachine and Relay.drainRelay on fakes: what dispatch, readiness
 * and the advertised capacity do, what is written to the meta store (in the
 * turn's batch, before the answer) and what a new Relay on the same stores
 * reads back at start.
 */
import { describe, expect, test } from "bun:test";
import { DRAINED_MACHINES, RELAY_DRAINING } from "../../src/core/drains.ts";
import { createMemoryStores, type FakeConnection, type MemoryStores } from "./fakes.ts";
import { relayHarness } from "./relay-harness.ts";

const spawned = (conn: FakeConnection): string[] =>
  conn
    .frames()
    .filter((f) => f.type === "spawnTask")
    .map((f) => String(f.taskId));

describe("a machine's drain", () => {
  test("its daemon gets no new task while another does; its task still gets commands", () => {
    const h = relayHarness();
    h.relay.start();
    const a = h.daemon("a", 2);
    const b = h.daemon("b", 2);
    h.spawn("t1"); // a waited longest
    expect(h.relay.drainMachine("a", true)).toEqual({
      machineId: "a",
      draining: true,
      connected: true,
      changed: true,
    });
    h.spawn("t2");
    h.spawn("t3");
    h.relay.serverFrame(JSON.stringify({ type: "interruptTask", taskId: "t1" }));
    expect({ a: spawned(a), b: spawned(b), interrupt: a.frames().at(-1)?.type }).toEqual({
      a: ["t1"],
      b: ["t2", "t3"],
      interrupt: "interruptTask",
    });
    h.send(a, { type: "taskComplete", taskId: "t1", success: true });
    expect(h.status("t1")).toBe("completed");
  });

  test("undrain dispatches queued tasks to it at once", () => {
    const h = relayHarness();
    h.relay.start();
    const a = h.daemon("a", 1);
    h.relay.drainMachine("a", true);
    h.spawn("q1");
    expect([spawned(a), h.status("q1")]).toEqual([[], "pending"]);
    expect(h.relay.drainMachine("a", false).changed).toBe(true);
    expect([spawned(a), h.status("q1")]).toEqual([["q1"], "dispatched"]);
  });

  test("written to the meta store only when it changes; a new relay on the same stores restores it", () => {
    const stores = createMemoryStores();
    const first = relayHarness({}, () => stores);
    first.relay.start();
    expect(first.relay.drainMachine("away", true)).toMatchObject({ connected: false });
    first.relay.drainMachine("b", true);
    expect(stores.meta.get(DRAINED_MACHINES)).toBe('["away","b"]');
    expect(first.relay.drainMachine("b", true).changed).toBe(false);
    first.relay.drainMachine("b", false);
    expect(stores.meta.get(DRAINED_MACHINES)).toBe('["away"]');

    const second = relayHarness({}, () => stores);
    second.relay.start();
    const away = second.daemon("away", 1);
    const other = second.daemon("other", 1);
    second.spawn("t1");
    expect({
      drained: second.relay.registry.drainingMachines(),
      away: spawned(away),
      other: spawned(other),
    }).toEqual({ drained: ["away"], away: [], other: ["t1"] });
  });

  test("an unreadable stored list counts as none", () => {
    const stores: MemoryStores = createMemoryStores();
    stores.meta.set(DRAINED_MACHINES, "{not json");
    const h = relayHarness({}, () => stores);
    h.relay.start();
    expect(h.relay.registry.drainingMachines()).toEqual([]);
  });
});

describe("the relay's drain", () => {
  test("not ready (draining), capacity 0 advertised, queued tasks still dispatched; ended: back", () => {
    const told: number[] = [];
    const h = relayHarness({ onCapacityChange: (n) => told.push(n) });
    h.relay.start();
    const a = h.daemon("a", 3);
    expect(h.relay.drainRelay(true)).toEqual({ draining: true, changed: true });
    expect(h.relay.drainRelay(true)).toEqual({ draining: true, changed: false });
    h.daemon("b", 2); // a capacity change while draining advertises nothing new
    h.spawn("t1");
    expect({
      told,
      ready: h.relay.readiness(),
      spawned: spawned(a),
      stored: h.stores.meta.get(RELAY_DRAINING),
    }).toEqual({ told: [3, 0], ready: ["draining"], spawned: ["t1"], stored: "true" });
    expect(h.relay.drainRelay(false)).toEqual({ draining: false, changed: true });
    expect({ told, ready: h.relay.readiness(), draining: h.relay.draining }).toEqual({
      told: [3, 0, 5],
      ready: [],
      draining: false,
    });
  });

  test("survives a restart: a new relay on the same stores drains from the start", () => {
    const stores = createMemoryStores();
    const first = relayHarness({}, () => stores);
    first.relay.start();
    first.relay.drainRelay(true);
    const told: number[] = [];
    const second = relayHarness({ onCapacityChange: (n) => told.push(n) }, () => stores);
    second.relay.start();
    second.daemon("a", 4);
    expect({ draining: second.relay.draining, ready: second.relay.readiness(), told }).toEqual({
      draining: true,
      ready: ["draining"],
      told: [],
    });
  });
});
