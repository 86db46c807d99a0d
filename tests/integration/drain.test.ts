/**
 * Draining end to end: a simulated server, the relay (real sockets, a real
 * SQLite file) and simulated daemons; drains set over HTTP as an operator
 * would, checked on the wire, across a daemon's reconnect and across a
 * restart of the relay on the same database.
 */
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { connectSimDaemon, type SimDaemon, startSimServer } from "../../src/sim/index.ts";
import { ready } from "../helpers/probes.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";

const spawned = (taskId: string) => (f: { msg?: { type?: string; taskId?: string } }) =>
  f.msg?.type === "spawnTask" && f.msg.taskId === taskId;

async function daemon(relay: TestRelay, machineId: string, capacity = 2): Promise<SimDaemon> {
  const d = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId,
    maxConcurrentTasks: capacity,
  });
  await d.authenticated;
  return d;
}

/** Removes a relay's directory kept for a restart, once the test is over. */
const removesDir = (dir: string) => ({
  [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
});

const post = (relay: TestRelay, path: string) => relay.json(path, { method: "POST" });
const del = (relay: TestRelay, path: string) => relay.json(path, { method: "DELETE" });

interface Daemons {
  daemons: { machineId: string; draining: boolean }[];
  drainingMachines: string[];
}
const drainedFlags = async (relay: TestRelay) => {
  const body = await relay.json<Daemons>("/daemons");
  return {
    flags: Object.fromEntries(body.daemons.map((d) => [d.machineId, d.draining])),
    all: body.drainingMachines,
  };
};

test("a drained daemon gets no new task while another does; its running task still gets its commands and completes", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  await server.waitForConnection();
  await using a = await daemon(relay, "a");
  await using b = await daemon(relay, "b");
  server.spawnTask("t1"); // a waited longest
  await a.waitFor(spawned("t1"));
  expect(await post(relay, "/daemons/a/drain")).toMatchObject({
    machineId: "a",
    draining: true,
    connected: true,
    changed: true,
  });
  server.spawnTask("t2");
  server.spawnTask("t3");
  await b.waitFor(spawned("t3"));
  const pause = server.pauseTask("t1");
  const interrupt = server.interruptTask("t1");
  await a.waitFor((f) => f.raw === interrupt);
  expect(a.received.some((f) => f.raw === pause)).toBe(true);
  const done = a.complete("t1", true);
  await server.waitFor((f) => f.raw === done);
  expect({
    a: a.framesOfType("spawnTask").map((f) => f.msg.taskId),
    b: b.framesOfType("spawnTask").map((f) => f.msg.taskId),
    t1: (await relay.json("/tasks/t1")).status,
    daemons: await drainedFlags(relay),
  }).toEqual({
    a: ["t1"],
    b: ["t2", "t3"],
    t1: "completed",
    daemons: { flags: { a: true, b: false }, all: ["a"] },
  });
});

test("the drain holds across the daemon's reconnect and a relay restart; undrain dispatches at once", async () => {
  await using server = startSimServer();
  const first = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url }, keepDir: true });
  using _dir = removesDir(first.dir);
  await server.waitForConnection();
  // Drained while not connected: it applies when it connects.
  expect(await post(first, "/daemons/a/drain")).toMatchObject({ connected: false, changed: true });
  const a1 = await daemon(first, "a");
  server.spawnTask("q1");
  await first.logs.waitFor((l) => l.event === "task_queued" && l.taskId === "q1");
  await a1.close();
  await first.logs.waitFor((l) => l.event === "downstream_disconnect");
  const a2 = await daemon(first, "a");
  expect((await drainedFlags(first)).flags).toEqual({ a: true });
  await a2.close();
  await first[Symbol.asyncDispose]();

  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url },
    dir: first.dir,
  });
  await using a = await daemon(relay, "a");
  await using b = await daemon(relay, "b", 1);
  // The queued task waited through the restart; the drained machine did not get it.
  await b.waitFor(spawned("q1"));
  server.spawnTask("q2");
  await relay.logs.waitFor((l) => l.event === "task_queued" && l.taskId === "q2");
  expect({
    a: a.framesOfType("spawnTask"),
    daemons: await drainedFlags(relay),
  }).toEqual({ a: [], daemons: { flags: { a: true, b: false }, all: ["a"] } });
  expect(await del(relay, "/daemons/a/drain")).toMatchObject({ draining: false, changed: true });
  await a.waitFor(spawned("q2"));
  expect((await drainedFlags(relay)).all).toEqual([]);
});

test("relay drain in auto mode: capacity 0 upstream, /ready 503 draining, queued tasks still dispatched; it survives a restart", async () => {
  await using server = startSimServer();
  const env = { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_ADVERTISE_CAPACITY: "auto" };
  const first = await startTestRelay({ env, keepDir: true });
  using _dir = removesDir(first.dir);
  await server.waitForConnection();
  const capacity = (n: number) => (f: { msg?: { type?: string; maxConcurrentTasks?: number } }) =>
    f.msg?.type === "capacityUpdate" && f.msg.maxConcurrentTasks === n;
  const d1 = await daemon(first, "m1", 1);
  await server.waitFor(capacity(1));
  server.spawnTask("t1");
  server.spawnTask("t2");
  await d1.waitFor(spawned("t1"));
  await first.logs.waitFor((l) => l.event === "task_queued" && l.taskId === "t2");

  expect(await post(first, "/drain")).toMatchObject({ draining: true, changed: true });
  await server.waitFor(capacity(0));
  expect(await ready(first)).toEqual({ status: 503, ready: false, reasons: ["draining"] });
  expect((await first.json("/status")).draining).toBe(true);
  // Queued work still goes to the daemons.
  d1.complete("t1", true);
  await d1.waitFor(spawned("t2"));
  d1.complete("t2", true);
  await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "t2");
  await d1.close();
  await first[Symbol.asyncDispose]();

  server.clearReceived();
  await using relay = await startTestRelay({ env, dir: first.dir });
  const conn = await server.waitForConnection(5000, (c) => c.machineId === relay.machineId);
  await using d2 = await daemon(relay, "m1", 3);
  expect({
    authenticate: conn.maxConcurrentTasks,
    ready: await ready(relay),
    draining: (await relay.json("/status")).draining,
  }).toEqual({
    authenticate: 0,
    ready: { status: 503, ready: false, reasons: ["draining"] },
    draining: true,
  });
  expect(await del(relay, "/drain")).toMatchObject({ draining: false, changed: true });
  await server.waitFor(capacity(3));
  // Nothing was advertised while it drained: the daemon's 3 waited for the end of the drain.
  expect(server.framesOfType("capacityUpdate").map((f) => f.msg.maxConcurrentTasks)).toEqual([3]);
  expect(await ready(relay)).toEqual({ status: 200, ready: true, reasons: [] });
  expect(d2.activeTasks.size).toBe(0);
});
