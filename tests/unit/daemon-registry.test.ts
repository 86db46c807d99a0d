/**
 * Each ownership transition of DaemonRegistry keeps the dispatch choice
 * right by itself: after it, `pick()` names the daemon docs/protocol.md
 * "Dispatch" says (a free slot; the fewest held tasks; on a tie, the one
 * whose last dispatch, or authentication, lies furthest back; not backed up).
 */
import { describe, expect, test } from "bun:test";
import type { Daemon } from "../../src/core/daemon.ts";
import { DaemonRegistry } from "../../src/core/daemon-registry.ts";
import { FakeConnection, fakeIdentity } from "./fakes.ts";

/** Three daemons a, b, c connected in that order (so a waited longest), each of capacity 2. */
function three() {
  const r = new DaemonRegistry();
  const add = (id: string) => r.add(fakeIdentity(id, { capacity: 2 })).daemon;
  return { r, a: add("a"), b: add("b"), c: add("c") };
}

const picked = (r: DaemonRegistry): string | undefined => r.pick()?.hostname;
const held = (d: Daemon | undefined): string[] => [...(d?.holds ?? [])];

test("unauthenticated connections are taken once, with their timer", () => {
  const r = new DaemonRegistry();
  const c = new FakeConnection("c1");
  r.addUnauthenticated(c, 5, 42);
  expect(r.unauthenticatedCount).toBe(1);
  expect(r.unauthenticatedConnections()).toEqual([c]);
  expect(r.takeUnauthenticated("c1")).toBe(42);
  expect(r.takeUnauthenticated("c1")).toBeUndefined();
  expect(r.unauthenticatedCount).toBe(0);
});

describe("the dispatch choice after each transition", () => {
  test("connect: the first to authenticate waited longest", () => {
    const { r, a } = three();
    expect({ picked: picked(r), turns: a.turn < (r.byMachineId("m-b")?.turn ?? 0) }).toEqual({
      picked: "a",
      turns: true,
    });
  });

  test("assign: the daemon that got a task goes behind the idle ones, then behind its equals", () => {
    const { r, a, b } = three();
    r.assign(a, "t1");
    expect({ picked: picked(r), holder: r.holderOf("t1")?.daemon?.hostname }).toEqual({
      picked: "b",
      holder: "a",
    });
    r.assign(b, "t2");
    expect(picked(r)).toBe("c");
    r.assign(r.pick() as Daemon, "t3");
    // All hold one: a's dispatch is the oldest.
    expect(picked(r)).toBe("a");
  });

  test("assign up to capacity: a full daemon is skipped", () => {
    const { r, a, b, c } = three();
    for (const [d, id] of [
      [a, "a1"],
      [a, "a2"],
      [b, "b1"],
      [c, "c1"],
    ] as const)
      r.assign(d, id);
    expect({ picked: picked(r), full: held(a) }).toEqual({ picked: "b", full: ["a1", "a2"] });
  });

  test("release: a daemon with fewer tasks comes first again", () => {
    const { r, a, b, c } = three();
    r.assign(a, "a1");
    r.assign(b, "b1");
    r.assign(c, "c1");
    r.release("c1");
    expect({ picked: picked(r), holder: r.holderOf("c1"), held: held(c) }).toEqual({
      picked: "c",
      holder: undefined,
      held: [],
    });
    r.release("c1"); // idempotent
    expect(picked(r)).toBe("c");
  });

  test("backpressure on skips the daemon, off brings it back in its place", () => {
    const { r, a } = three();
    r.setBackpressured(a, true);
    expect(picked(r)).toBe("b");
    r.setBackpressured(a, false);
    expect(picked(r)).toBe("a");
  });

  test("capacity: 0 takes it out, raised brings it back", () => {
    const { r, a } = three();
    r.setCapacity(a, 0);
    expect({ picked: picked(r), total: r.totalCapacity }).toEqual({ picked: "b", total: 4 });
    r.setCapacity(a, 3);
    expect({ picked: picked(r), total: r.totalCapacity }).toEqual({ picked: "a", total: 7 });
  });

  test("retire: never picked again, and its tasks stay with its machine", () => {
    const { r, a } = three();
    r.assign(a, "t1");
    r.retire(a);
    r.release("x"); // an unrelated transition must not bring it back
    expect({ picked: picked(r), retired: a.retired, holder: r.holderOf("t1")?.machineId }).toEqual({
      picked: "b",
      retired: true,
      holder: "m-a",
    });
  });
});

describe("a machine's tasks across a disconnect", () => {
  test("disconnect: the tasks stay with the machine, with no connection (away)", () => {
    const { r, a } = three();
    r.assign(a, "t1");
    r.remove(a.conn.id);
    expect({
      machine: r.holderOf("t1")?.machineId,
      connection: r.holderOf("t1")?.daemon,
      holds: r.holds("m-a", "t1"),
      away: [...r.heldBy("m-a")],
      picked: picked(r),
    }).toEqual({
      machine: "m-a",
      connection: undefined,
      holds: true,
      away: ["t1"],
      picked: "b",
    });
  });

  test("reattach: the new connection holds them at once and is placed by its load", () => {
    const { r, a, b, c } = three();
    r.assign(a, "t1");
    r.assign(a, "t2");
    r.remove(a.conn.id);
    r.assign(b, "b1");
    r.assign(c, "c1");
    const back = r.add(fakeIdentity("a2", { machineId: "m-a", capacity: 3 })).daemon;
    expect({
      held: held(back),
      holder: r.holderOf("t1")?.daemon === back,
      // b and c hold one each, the newcomer two: b's dispatch is the oldest.
      picked: picked(r),
    }).toEqual({ held: ["t1", "t2"], holder: true, picked: "b" });
    r.release("t1");
    r.release("t2");
    expect(picked(r)).toBe("a2"); // idle now: fewer tasks beats an older turn
  });

  test("replace: the newer connection takes the tasks; the older is retired and holds none", () => {
    const { r, a } = three();
    r.assign(a, "t1");
    const { daemon: next, replaced } = r.add(fakeIdentity("a2", { machineId: "m-a", capacity: 2 }));
    expect({
      replaced: replaced === a,
      retired: a.retired,
      old: held(a),
      next: held(next),
      byMachine: r.byMachineId("m-a") === next,
    }).toEqual({ replaced: true, retired: true, old: [], next: ["t1"], byMachine: true });
    // The older one's close must not unmap the newer one, nor take its tasks.
    expect(r.remove(a.conn.id)).toBe(a);
    expect(r.remove(a.conn.id)).toBeUndefined();
    expect({ byMachine: r.byMachineId("m-a") === next, held: held(next) }).toEqual({
      byMachine: true,
      held: ["t1"],
    });
  });

  test("restore: after a restart the machine holds its tasks, away, until it connects", () => {
    const r = new DaemonRegistry();
    r.restore("m-a", "t1");
    expect({ holder: r.holderOf("t1")?.daemon, picked: r.pick() }).toEqual({
      holder: undefined,
      picked: undefined,
    });
    const a = r.add(fakeIdentity("a", { capacity: 1 })).daemon;
    expect({ held: held(a), picked: r.pick() }).toEqual({ held: ["t1"], picked: undefined });
    r.release("t1");
    expect(r.pick()).toBe(a);
  });

  test("a stale view changes nothing", () => {
    const { r, a } = three();
    r.remove(a.conn.id);
    r.setCapacity(a, 9);
    r.setBackpressured(a, true);
    expect({ picked: picked(r), total: r.totalCapacity, size: r.size }).toEqual({
      picked: "b",
      total: 4,
      size: 2,
    });
    expect(() => r.assign(a, "t1")).toThrow();
  });
});
