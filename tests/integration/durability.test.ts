/**
 * Nothing lost: the outbox across upstream outages, the durable queue across
 * restarts, reattach within the grace period, and idempotent spawns.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  connectSimDaemon,
  type SimDaemon,
  type SimServer,
  startSimServer,
} from "../../src/sim/index.ts";
import { barrier, isSpawn } from "../helpers/frames.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
});

async function setup(
  env: Record<string, string> = {},
  dir?: string,
): Promise<{ server: SimServer; relay: TestRelay }> {
  const server = startSimServer();
  cleanup.push(() => server.stop());
  const relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, ...env },
    ...(dir ? { dir } : {}),
  });
  cleanup.push(() => relay[Symbol.asyncDispose]());
  await server.waitForConnection();
  return { server, relay };
}

async function daemon(relay: TestRelay, machineId: string, capacity = 4): Promise<SimDaemon> {
  const d = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId,
    maxConcurrentTasks: capacity,
  });
  cleanup.push(() => d.close());
  await d.authenticated;
  return d;
}

test("an upstream outage loses nothing: every frame arrives once, in order per daemon", async () => {
  const { server, relay } = await setup({});
  const a = await daemon(relay, "a");
  const b = await daemon(relay, "b");
  server.spawnTask("ta");
  server.spawnTask("tb");
  await a.waitFor(isSpawn("ta"));
  await b.waitFor(isSpawn("tb"));

  await server.stop();
  await relay.logs.waitFor((l) => l.event === "disconnected");
  const sent: string[] = [];
  for (let i = 0; i < 50; i++) {
    sent.push(a.taskOutput("ta", `a line ${i}`));
    sent.push(b.taskOutput("tb", `b line ${i}`));
  }
  sent.push(a.complete("ta", true), b.complete("tb", false, "failed during outage"));
  await Promise.all([barrier(a), barrier(b)]);
  expect(relay.outbox.stats().frames).toBe(sent.length);

  server.restart();
  await server.waitForConnection();
  await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "tb");
  await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "ta");
  const got = server.received
    .filter((f) => f.msg?.type !== "heartbeat" && f.msg?.type !== "authenticate")
    .map((f) => f.raw);
  expect(got.filter((raw) => raw.includes('"ta"'))).toEqual(
    sent.filter((raw) => raw.includes('"ta"')),
  );
  expect(got.filter((raw) => raw.includes('"tb"'))).toEqual(
    sent.filter((raw) => raw.includes('"tb"')),
  );
  expect(relay.outbox.stats().frames).toBe(0);
  expect(relay.logs.items.some((l) => l.event === "outbox_draining")).toBe(true);
});

test("queued tasks survive a restart and are dispatched in FIFO order", async () => {
  const dir = mkdtempSync(join(tmpdir(), "makima-relay-fifo-"));
  const first = await setup({}, dir);
  const ids = ["q1", "q2", "q3", "q4", "q5"];
  for (const id of ids) first.server.spawnTask(id);
  await first.relay.logs.waitFor((l) => l.event === "task_queued" && l.taskId === "q5");
  await first.relay.stop();

  const second = await setup({}, dir);
  expect((await second.relay.json("/status")).pendingTasks).toBe(5);
  const d = await daemon(second.relay, "late", 10);
  await d.waitFor(isSpawn("q5"));
  expect(d.framesOfType("spawnTask").map((f) => f.msg.taskId)).toEqual(ids);
  expect(second.relay.machineId).toBe(first.relay.machineId);
});

test("a daemon that reconnects within the grace period keeps its task and gets commands sent meanwhile", async () => {
  const { server, relay } = await setup({ MAKIMA_RELAY_GRACE_MS: "10000" });
  const d1 = await daemon(relay, "flaky");
  server.spawnTask("g1");
  await d1.waitFor(isSpawn("g1"));
  await d1.close();
  await relay.logs.waitFor((l) => l.event === "downstream_disconnect");
  const pause = server.pauseTask("g1");
  const message = server.sendMessage("g1", "still there?");

  const d2 = await daemon(relay, "flaky");
  await d2.waitFor((f) => f.raw === message);
  expect(d2.received.filter((f) => f.msg?.taskId === "g1").map((f) => f.raw)).toEqual([
    pause,
    message,
  ]);
  d2.heartbeat(["g1"]);
  const done = d2.complete("g1", true);
  expect((await server.waitFor((f) => f.msg?.type === "taskComplete")).raw).toBe(done);
  expect(await relay.json("/tasks/g1")).toMatchObject({ status: "completed", machineId: "flaky" });
});

test("after the grace period a gone daemon's task is lost, upstream and in /tasks", async () => {
  const { server, relay } = await setup({ MAKIMA_RELAY_GRACE_MS: "100" });
  const d = await daemon(relay, "gone");
  server.spawnTask("l1");
  await d.waitFor(isSpawn("l1"));
  await d.close();
  const lost = await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "l1");
  expect(lost.msg).toEqual({
    type: "taskComplete",
    taskId: "l1",
    success: false,
    error: "daemon lost",
  });
  expect(await relay.json("/tasks/l1")).toMatchObject({ status: "lost", error: "daemon lost" });
  expect((await relay.json("/status")).lostTasks).toBe(1);
});

test("the first heartbeat after reattaching settles tasks the daemon no longer has", async () => {
  const { server, relay } = await setup({ MAKIMA_RELAY_GRACE_MS: "10000" });
  const d1 = await daemon(relay, "forgetful");
  server.spawnTask("keep");
  server.spawnTask("forgot");
  await d1.waitFor(isSpawn("forgot"));
  await d1.close();
  const d2 = await daemon(relay, "forgetful");
  d2.heartbeat(["keep"]);
  const lost = await server.waitFor((f) => f.msg?.type === "taskComplete");
  expect(lost.msg).toMatchObject({ taskId: "forgot", error: "daemon lost" });
  expect(await relay.json("/tasks/keep")).toMatchObject({ status: "dispatched" });
});

test("a silent daemon is closed with 4408 and a second connection replaces the first with 4409", async () => {
  const { server, relay } = await setup({
    MAKIMA_RELAY_DAEMON_TIMEOUT_MS: "300",
    MAKIMA_RELAY_GRACE_MS: "10000",
  });
  const old = await daemon(relay, "twin");
  server.spawnTask("r1");
  await old.waitFor(isSpawn("r1"));
  const fresh = await daemon(relay, "twin");
  expect((await old.waitForClose(5000)).code).toBe(4409);
  fresh.complete("r1", true);
  await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "r1");
  expect((await fresh.waitForClose(5000)).code).toBe(4408);
});

test("a full outbox drops output frames but never taskComplete, and counts the drops", async () => {
  const { server, relay } = await setup({ MAKIMA_RELAY_OUTBOX_MAX_BYTES: "4096" });
  const d = await daemon(relay, "chatty", 30);
  const ids = Array.from({ length: 20 }, (_, i) => `o${i}`);
  for (const id of ids) server.spawnTask(id);
  await d.waitFor(isSpawn("o19"));
  await server.stop();
  await relay.logs.waitFor((l) => l.event === "disconnected");
  let outputs = 0;
  for (const id of ids) {
    for (let i = 0; i < 5; i++, outputs++) d.taskOutput(id, `${"x".repeat(100)} ${i}`);
    d.complete(id, true);
  }
  await barrier(d);
  expect(relay.logs.items.some((l) => l.event === "outbox_drop")).toBe(true);
  server.restart();
  await server.waitForConnection();
  for (const id of ids)
    await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === id);
  const arrivedOutputs = server.framesOfType("taskOutput").length;
  const status = await relay.json<{ outbox: { droppedFrames: number } }>("/status");
  expect(arrivedOutputs).toBeLessThan(outputs);
  expect(status.outbox.droppedFrames).toBe(outputs - arrivedOutputs);
});

test("a repeated spawnTask is dispatched once; one for a finished task is a new attempt", async () => {
  const { server, relay } = await setup();
  const d = await daemon(relay, "once");
  server.spawnTask("dup");
  server.spawnTask("dup");
  await d.waitFor(isSpawn("dup"));
  d.complete("dup", true);
  await server.waitFor((f) => f.msg?.type === "taskComplete");
  expect(d.framesOfType("spawnTask")).toHaveLength(1);
  server.spawnTask("dup");
  await d.waitForNext(isSpawn("dup"));
  expect(await relay.json("/tasks/dup")).toMatchObject({ status: "dispatched", attempts: 2 });
  expect((await relay.json("/status")).totalTasksProcessed).toBe(1);
});

test("history keeps MAKIMA_RELAY_HISTORY_KEEP finished tasks and never prunes active ones", async () => {
  const { server, relay } = await setup({
    MAKIMA_RELAY_HISTORY_KEEP: "5",
    MAKIMA_RELAY_DAEMON_TIMEOUT_MS: "200",
  });
  const d = await daemon(relay, "worker", 2);
  for (let i = 0; i < 12; i++) server.spawnTask(`h${i}`);
  for (let i = 0; i < 10; i++) {
    await d.waitFor(isSpawn(`h${i}`));
    d.complete(`h${i}`, true);
  }
  await d.waitFor(isSpawn("h11"));
  // Pruning runs from the relay's sweep (every 50 ms here) once the tasks have ended.
  const completed = () => relay.stores.tasks.countByStatus().completed;
  if (completed() > 5) {
    await relay.logs.waitFor((l) => l.event === "history_pruned" && completed() <= 5);
  }
  const total = (await relay.json<{ total: number }>("/tasks?status=completed")).total;
  expect(total).toBe(5);
  const kept = await relay.json<{ tasks: { taskId: string }[] }>(
    "/tasks?status=completed&limit=10",
  );
  expect(kept.tasks.map((t) => t.taskId).sort()).toEqual(["h5", "h6", "h7", "h8", "h9"]);
  expect((await relay.json<{ total: number }>("/tasks?status=dispatched")).total).toBe(2);
  expect((await relay.json("/status")).totalTasksProcessed).toBe(12);
});
