/**
 * Reconciliation while connected (docs/protocol.md "Task lifecycle"): a task
 * missing from two consecutive accepted heartbeats of its live daemon, both
 * after its spawnTask was sent, was forgotten: it is lost, upstream hears
 * "daemon lost", and the slot goes to the next queued task. One omission
 * alone changes nothing, and listing the task again starts the count over.
 */
import { expect, test } from "bun:test";
import type { SimServer } from "../../src/sim/index.ts";
import { barrier, isSpawn } from "../helpers/frames.ts";
import { startLinked } from "../helpers/linked.ts";

const completions = (server: SimServer, taskId: string) =>
  server.framesOfType("taskComplete").filter((f) => f.msg.taskId === taskId);

test("a daemon that forgets a task and keeps heartbeating loses it after two heartbeats; its slot is reused", async () => {
  // Heartbeats every 50 ms list what the daemon holds, as a real daemon's do.
  await using stage = await startLinked({
    machineId: "amnesiac",
    maxConcurrentTasks: 1,
    heartbeatMs: 50,
  });
  const { server, relay, d } = stage;
  server.spawnTask("forgotten");
  server.spawnTask("queued");
  await d.waitFor(isSpawn("forgotten"));
  expect(await relay.json("/tasks/queued")).toMatchObject({ status: "pending" });

  // It has listed the task once (omissions count from then: a heartbeat read sooner could
  // have been written before the spawnTask reached it), then restarts its worker and
  // forgets, without a taskComplete.
  d.heartbeat();
  await barrier(d);
  const forgotAt = d.received.length;
  d.forget("forgotten");
  const lost = await server.waitFor(
    (f) => f.msg?.type === "taskComplete" && f.msg.taskId === "forgotten",
    3000,
  );
  expect(lost.msg).toEqual({
    type: "taskComplete",
    taskId: "forgotten",
    success: false,
    error: "daemon lost",
  });
  await d.waitFor(isSpawn("queued"), 3000);
  expect(d.received.slice(forgotAt).filter((f) => f.msg?.type === "spawnTask")).toHaveLength(1);
  expect(await relay.json("/tasks/forgotten")).toMatchObject({
    status: "lost",
    error: "daemon lost",
  });
  expect(await relay.json("/tasks/queued")).toMatchObject({
    status: "dispatched",
    machineId: "amnesiac",
  });
  const daemons = await relay.json<{ daemons: { taskIds: string[]; activeTasks: number }[] }>(
    "/daemons",
  );
  expect(daemons.daemons).toEqual([
    expect.objectContaining({ taskIds: ["queued"], activeTasks: 1 }),
  ]);
  expect(completions(server, "forgotten")).toHaveLength(1);
  expect(d.closed).toBeUndefined();
});

test("two heartbeats are needed: one omission, then the task listed again, keeps it", async () => {
  await using stage = await startLinked({ machineId: "steady", maxConcurrentTasks: 1 });
  const { server, relay, d } = stage;
  server.spawnTask("kept");
  await d.waitFor(isSpawn("kept"));

  // Sent by hand so that each one is known to be handled before the next (barrier).
  for (const listed of [[], ["kept"], [], ["kept"], []]) {
    d.heartbeat(listed);
    await barrier(d);
  }
  expect(await relay.json("/tasks/kept")).toMatchObject({ status: "dispatched" });
  expect(completions(server, "kept")).toEqual([]);
  expect(relay.logs.items.filter((l) => l.event === "task_lost")).toEqual([]);

  const done = d.complete("kept", true);
  const got = await server.waitFor((f) => f.msg?.type === "taskComplete");
  expect(got.raw).toBe(done);
  expect(await relay.json("/tasks/kept")).toMatchObject({ status: "completed" });
});

test("two heartbeats in a row without a task lose that task only; the one they list stays", async () => {
  await using stage = await startLinked({ machineId: "manual", maxConcurrentTasks: 2 });
  const { server, relay, d } = stage;
  server.spawnTask("listed");
  server.spawnTask("dropped");
  await d.waitFor(isSpawn("dropped"));
  // Both listed once: omissions count from here.
  d.heartbeat(["listed", "dropped"]);
  await barrier(d);

  d.heartbeat(["listed"]);
  await barrier(d);
  // One omission: nothing yet.
  expect(completions(server, "dropped")).toEqual([]);
  expect(await relay.json("/tasks/dropped")).toMatchObject({ status: "dispatched" });
  d.heartbeat(["listed"]);
  const lost = await server.waitFor((f) => f.msg?.taskId === "dropped", 3000);
  expect(lost.msg).toMatchObject({ type: "taskComplete", success: false, error: "daemon lost" });
  // The task it kept listing is untouched.
  expect(await relay.json("/tasks/listed")).toMatchObject({ status: "dispatched" });
  expect(await relay.json("/tasks/dropped")).toMatchObject({ status: "lost" });
});
