/**
 * Draining is a dispatch fact of DaemonRegistry, kept by machineId: after
 * each change `pick()` skips a drained machine's daemon (whatever its load or
 * turn) and puts it back in its place when the drain is lifted; the drain
 * outlives the machine's connections.
 */
import { describe, expect, test } from "bun:test";
import { canTakeTask } from "../../src/core/daemon.ts";
import { DaemonRegistry } from "../../src/core/daemon-registry.ts";
import { fakeDaemon, fakeIdentity } from "./fakes.ts";

/** Three daemons a, b, c connected in that order (so a waited longest), each of capacity 2. */
function three() {
  const r = new DaemonRegistry();
  const add = (id: string) => r.add(fakeIdentity(id, { capacity: 2 })).daemon;
  return { r, a: add("a"), b: add("b"), c: add("c") };
}

const picked = (r: DaemonRegistry): string | undefined => r.pick()?.hostname;

test("the dispatch rule: a draining daemon cannot take a task", () => {
  expect([canTakeTask(fakeDaemon("x")), canTakeTask(fakeDaemon("x", { draining: true }))]).toEqual([
    true,
    false,
  ]);
});

describe("pick() after drain and undrain", () => {
  test("drain skips the daemon the order would choose; undrain puts it back first", () => {
    const { r, a } = three();
    expect(r.setDraining("m-a", true)).toBe(true);
    expect({ picked: picked(r), draining: a.draining, listed: r.drainingMachines() }).toEqual({
      picked: "b",
      draining: true,
      listed: ["m-a"],
    });
    expect(r.setDraining("m-a", false)).toBe(true);
    expect({ picked: picked(r), draining: a.draining, listed: r.drainingMachines() }).toEqual({
      picked: "a",
      draining: false,
      listed: [],
    });
  });

  test("a second drain or undrain changes nothing and says so", () => {
    const { r } = three();
    r.setDraining("m-b", true);
    expect([r.setDraining("m-b", true), picked(r)]).toEqual([false, "a"]);
    r.setDraining("m-b", false);
    expect([r.setDraining("m-b", false), r.setDraining("m-never", false)]).toEqual([false, false]);
  });

  test("a drained daemon keeps its tasks; releasing one does not bring it back", () => {
    const { r, a, b } = three();
    r.assign(a, "t1");
    r.setDraining("m-a", true);
    r.release("t1");
    r.assign(b, "t2");
    // a is idle and b holds one, yet a is drained: c, then b.
    expect({ picked: picked(r), holds: [...a.holds] }).toEqual({ picked: "c", holds: [] });
    r.setDraining("m-c", true);
    expect(picked(r)).toBe("b");
    r.setDraining("m-b", true);
    expect(r.pick()).toBeUndefined();
    r.setDraining("m-a", false);
    expect(picked(r)).toBe("a");
  });

  test("other transitions (capacity, backpressure off) never bring a drained daemon back", () => {
    const { r, a } = three();
    r.setDraining("m-a", true);
    r.setCapacity(a, 5);
    r.setBackpressured(a, true);
    r.setBackpressured(a, false);
    expect(picked(r)).toBe("b");
  });

  test("all drained: nobody is picked, and the capacity sum still counts them", () => {
    const { r } = three();
    for (const m of ["m-a", "m-b", "m-c"]) r.setDraining(m, true);
    expect({ picked: r.pick(), total: r.totalCapacity }).toEqual({ picked: undefined, total: 6 });
  });
});

describe("a drain belongs to the machine, not to one connection", () => {
  test("it holds across a disconnect and a reconnect", () => {
    const { r, a, b, c } = three();
    r.assign(a, "t1");
    r.setDraining("m-a", true);
    r.remove(a.conn.id);
    r.assign(b, "b1");
    expect(r.isDraining("m-a")).toBe(true);
    const back = r.add(fakeIdentity("a2", { machineId: "m-a", capacity: 3 })).daemon;
    r.release("t1");
    // a2 is idle, c too and older; but a2 is drained: c, then (once c is busy) b.
    expect({ draining: back.draining, picked: picked(r) }).toEqual({
      draining: true,
      picked: "c",
    });
    r.assign(c, "c1");
    expect(picked(r)).toBe("b");
    r.setDraining("m-a", false);
    // The only idle one now.
    expect(picked(r)).toBe("a2");
  });

  test("it holds across a replacement (same machineId)", () => {
    const { r } = three();
    r.setDraining("m-b", true);
    const { daemon: next } = r.add(fakeIdentity("b2", { machineId: "m-b", capacity: 2 }));
    expect({ draining: next.draining, picked: picked(r) }).toEqual({
      draining: true,
      picked: "a",
    });
  });

  test("a machine drained before it ever connects is drained when it does", () => {
    const r = new DaemonRegistry();
    r.setDraining("m-late", true);
    const late = r.add(fakeIdentity("late", { machineId: "m-late" })).daemon;
    expect({ draining: late.draining, picked: r.pick() }).toEqual({
      draining: true,
      picked: undefined,
    });
    const other = r.add(fakeIdentity("other")).daemon;
    expect(r.pick()).toBe(other);
    r.setDraining("m-late", false);
    // Both idle: the one that authenticated first waited longest.
    expect(r.pick()).toBe(late);
  });
});
