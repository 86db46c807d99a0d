/**
 * The demo's moving parts without a browser: tasks flow through the relay to
 * the simulated daemons and back, failures are mixed in, and a daemon that
 * drops and comes back within the grace period keeps its tasks (none lost).
 */
import { expect, test } from "bun:test";
import { startTestDemo } from "./demo-fixture.ts";

test("tasks flow, some fail, and a flapping daemon loses no task", async () => {
  await using demo = await startTestDemo({
    ratePerSec: 8,
    runMs: [300, 1200],
    failRate: 0.3,
    flapEveryMs: [1000, 1200],
  });
  expect(demo.daemons.map((d) => d.maxConcurrentTasks)).toEqual([2, 3, 4]);
  const firstIds = demo.daemons.map((d) => d.daemonId);
  // Two drops and reattaches, with tasks in flight, then enough finished tasks of both kinds.
  const deadline = Date.now() + 15_000;
  const reattached = () => demo.logs.filter((l) => l.event === "reattached").length;
  let body: { status: string; lostTasks: number; connectedDaemons: number } | undefined;
  let finished: Record<string, number> = {};
  while (Date.now() < deadline) {
    body = (await (await fetch(demo.urls.status)).json()) as typeof body;
    const { tasks } = (await (await fetch(`${demo.relay.url}/tasks?limit=500`)).json()) as {
      tasks: { status: string }[];
    };
    finished = {};
    for (const t of tasks) finished[t.status] = (finished[t.status] ?? 0) + 1;
    if (reattached() >= 2 && (finished.completed ?? 0) >= 5 && (finished.failed ?? 0) >= 1) break;
    await Bun.sleep(100);
  }
  expect(reattached()).toBeGreaterThanOrEqual(2);
  expect(body).toMatchObject({ status: "ok", lostTasks: 0, connectedDaemons: 3 });
  expect(finished.completed).toBeGreaterThanOrEqual(5);
  expect(finished.failed).toBeGreaterThanOrEqual(1);
  expect(finished.lost).toBeUndefined();
  // The dropped daemons came back as new connections with their old machineIds.
  expect(demo.daemons.map((d) => d.machineId)).toEqual([
    "demo-daemon-1",
    "demo-daemon-2",
    "demo-daemon-3",
  ]);
  expect(demo.daemons.some((d, i) => d.daemonId !== firstIds[i])).toBe(true);

  await demo.stop();
  expect(demo.server.connections).toEqual([]);
  expect(demo.daemons.every((d) => d.closed !== undefined)).toBe(true);
}, 30_000);
