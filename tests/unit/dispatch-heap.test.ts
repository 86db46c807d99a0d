/**
 * The registry's O(log n) dispatch order must always agree with the plain
 * scan that states the rule (pickDaemon), whatever happens to the daemons:
 * every change goes through a registry transition, as in the relay.
 */
import { expect, test } from "bun:test";
import type { Daemon } from "../../src/core/daemon.ts";
import { DaemonRegistry } from "../../src/core/daemon-registry.ts";
import { DispatchHeap } from "../../src/core/dispatch-heap.ts";
import { pickDaemon } from "./dispatch-rule.ts";
import { fakeIdentity, mulberry32 } from "./fakes.ts";

test("10,000 random transitions: pick() always equals the scan", () => {
  const rng = mulberry32(20261125);
  const r = new DaemonRegistry();
  const live: Daemon[] = [];
  let ids = 0;
  let tasks = 0;
  const any = (): Daemon | undefined => live[Math.floor(rng() * live.length)];
  for (let step = 0; step < 10_000; step++) {
    const op = rng();
    const d = any();
    if (op < 0.1 || !d) {
      const capacity = Math.floor(rng() * 5);
      // Now and then a machine reconnects: the new connection takes over its tasks.
      const machineId = d && rng() < 0.3 ? d.machineId : `m${ids + 1}`;
      const { daemon, replaced } = r.add(fakeIdentity(`c${++ids}`, { machineId, capacity }));
      live.push(daemon);
      if (replaced) live.splice(live.indexOf(replaced), 1);
    } else if (op < 0.15) {
      r.remove(d.conn.id);
      live.splice(live.indexOf(d), 1);
    } else if (op < 0.45) {
      // Dispatch to whoever pick() names, as the task book does.
      const chosen = r.pick();
      if (chosen) r.assign(chosen, `t${++tasks}`);
    } else if (op < 0.7) {
      const first = d.holds.values().next();
      if (!first.done) r.release(first.value);
    } else if (op < 0.8) {
      r.setBackpressured(d, !d.backpressured);
    } else if (op < 0.95) {
      r.setCapacity(d, Math.floor(rng() * 6));
    } else {
      r.retire(d);
    }
    expect(r.pick()).toBe(pickDaemon(r.all()));
  }
  expect(tasks).toBeGreaterThan(1000);
});

test("the heap orders anything by the function it is given", () => {
  const heap = new DispatchHeap<{ n: number }>((a, b) => a.n < b.n);
  const items = [5, 3, 8, 1, 9].map((n) => ({ n }));
  for (const item of items) heap.update(item);
  expect(heap.peek()?.n).toBe(1);
  const one = items[3] as { n: number };
  one.n = 10;
  heap.update(one);
  expect(heap.peek()?.n).toBe(3);
  heap.remove(items[1] as { n: number });
  expect({ first: heap.peek()?.n, size: heap.size }).toEqual({ first: 5, size: 4 });
});
