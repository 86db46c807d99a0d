/**
 * The registry's O(log n) dispatch order must always agree with the plain
 * scan that states the rule (pickDaemon), whatever happens to the daemons.
 */
import { expect, test } from "bun:test";
import { type Daemon, DaemonRegistry } from "../../src/core/daemon-registry.ts";
import { pickDaemon } from "./dispatch-rule.ts";
import { fakeDaemon, mulberry32 } from "./fakes.ts";

const entry = (id: number, capacity: number): Daemon => fakeDaemon(`c${id}`, { capacity });

test("10,000 random operations: pick() always equals the scan", () => {
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
      live.push(r.add(entry(++ids, Math.floor(rng() * 5))));
    } else if (op < 0.15) {
      r.remove(d.conn.id);
      live.splice(live.indexOf(d), 1);
    } else if (op < 0.45) {
      // Dispatch to whoever pick() names, as the task book does.
      const chosen = r.pick();
      if (chosen) {
        chosen.tasks.add(`t${++tasks}`);
        chosen.turn = r.nextTurn();
        r.changed(chosen);
      }
    } else if (op < 0.7) {
      const first = d.tasks.values().next();
      if (!first.done) d.tasks.delete(first.value);
      r.changed(d);
    } else if (op < 0.8) {
      d.backpressured = !d.backpressured;
      r.changed(d);
    } else if (op < 0.9) {
      r.setCapacity(d, Math.floor(rng() * 6));
    } else {
      d.retired = rng() < 0.2;
      r.changed(d);
    }
    expect(r.pick()).toBe(pickDaemon(r.all()));
  }
  expect(tasks).toBeGreaterThan(1000);
});
