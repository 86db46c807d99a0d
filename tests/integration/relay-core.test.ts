/**
 * The core relay end to end: simulated server ↔ relay ↔ simulated daemons
 * over real sockets, with a real SQLite file.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  connectSimDaemon,
  type SimDaemon,
  type SimServer,
  startSimServer,
} from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";

let server: SimServer;
let relay: TestRelay;
const daemons: SimDaemon[] = [];

async function daemon(
  machineId: string,
  maxConcurrentTasks: number,
  apiKey = TEST_KEY,
): Promise<SimDaemon> {
  const d = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey,
    machineId,
    hostname: `${machineId}-host`,
    maxConcurrentTasks,
  });
  daemons.push(d);
  await d.authenticated;
  return d;
}

const spawned = (taskId: string) => (f: { msg?: { type?: string; taskId?: string } }) =>
  f.msg?.type === "spawnTask" && f.msg.taskId === taskId;

beforeEach(async () => {
  server = startSimServer();
  relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  await server.waitForConnection();
});

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.close().catch(() => {});
  await relay[Symbol.asyncDispose]();
  await server.stop();
});

describe("upstream link", () => {
  test("authenticates with a stable machineId, role relay, and capacity 0", async () => {
    const conn = await server.waitForConnection();
    expect(conn).toMatchObject({
      machineId: relay.machineId,
      role: "relay",
      maxConcurrentTasks: 0,
      apiKey: TEST_KEY,
    });
    const status = await relay.json("/status");
    expect(status).toMatchObject({
      status: "degraded",
      upstreamConnected: true,
      daemonId: conn.daemonId,
      reconnectAttempts: 0,
    });
    await daemon("m1", 1);
    expect(await relay.json("/status")).toMatchObject({ status: "ok", connectedDaemons: 1 });
  });

  test("reconnects with backoff after the server drops the link", async () => {
    const first = await server.waitForConnection();
    server.disconnectAll(1011, "server restart");
    const again = await server.waitForConnection(5000, (c) => c.connId !== first.connId);
    expect(again.machineId).toBe(first.machineId);
    const reconnecting = await relay.logs.waitFor((l) => l.event === "reconnecting");
    expect(String(reconnecting.details)).toContain("attempt 1");
    await relay.logs.waitFor((l) => l.event === "authenticated" && relay.link.authenticated);
    // The new link counts as attempt 1 until it has stayed up 30 s; one short link is no flapping.
    expect(await relay.json("/status")).toMatchObject({
      reconnectAttempts: 1,
      upstreamFlapping: false,
      linkDrops: 1,
    });
  });

  test("POST /reconnect opens a fresh link", async () => {
    const first = await server.waitForConnection();
    const res = await relay.json("/reconnect", { method: "POST" });
    expect(res).toEqual({ success: true, message: "Reconnection initiated" });
    const closed = await server.waitForClose((c) => c.connId === first.connId);
    expect(closed.code).toBe(1000);
    await server.waitForConnection(5000, (c) => c.connId !== first.connId);
  });
});

describe("dispatch and routing", () => {
  test("least-loaded dispatch across daemons of different capacity, then queueing", async () => {
    const big = await daemon("big", 3);
    const small = await daemon("small", 1);
    for (const id of ["t1", "t2", "t3", "t4", "t5"]) server.spawnTask(id);
    // t1 → big (both empty; big waited longer), t2 → small, t3 and t4 → big, t5 queued.
    await big.waitFor(spawned("t4"));
    await small.waitFor(spawned("t2"));
    expect(big.framesOfType("spawnTask").map((f) => f.msg.taskId)).toEqual(["t1", "t3", "t4"]);
    expect(small.framesOfType("spawnTask").map((f) => f.msg.taskId)).toEqual(["t2"]);
    expect((await relay.json("/status")).pendingTasks).toBe(1);
    expect((await relay.json<{ tasks: unknown[] }>("/tasks?status=pending")).tasks).toHaveLength(1);

    small.complete("t2", true);
    await small.waitFor(spawned("t5"));
    await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "t2");
    const t2 = await relay.json("/tasks/t2");
    expect(t2).toMatchObject({
      taskId: "t2",
      status: "completed",
      machineId: "small",
      attempts: 1,
    });
  });

  test("control commands reach the daemon that holds the task; unknown commands are broadcast", async () => {
    const a = await daemon("a", 1);
    const b = await daemon("b", 1);
    server.spawnTask("ta");
    server.spawnTask("tb");
    await a.waitFor(spawned("ta"));
    await b.waitFor(spawned("tb"));
    const sent = [
      server.pauseTask("tb"),
      server.resumeTask("tb"),
      server.sendMessage("tb", "hi"),
      server.interruptTask("tb"),
    ];
    for (const raw of sent) await b.waitFor((f) => f.raw === raw);
    expect(a.received.filter((f) => f.msg?.taskId === "tb")).toHaveLength(0);

    const announcement = server.send('{"type":"serverNotice","text":"maintenance at 5"}');
    await a.waitFor((f) => f.raw === announcement);
    await b.waitFor((f) => f.raw === announcement);
  });

  test("daemon frames reach the server byte-identical; taskComplete is recorded", async () => {
    const d = await daemon("d", 2);
    server.spawnTask("tx", "build things");
    await d.waitFor(spawned("tx"));
    const odd =
      '{ "type" : "taskOutput",  "taskId":"tx", "big": 12345678901234567890, "s":"\\u00e9 ünï", "n": 1.0 }';
    d.sendRaw(odd);
    const got = await server.waitFor((f) => f.msg?.type === "taskOutput");
    expect(got.raw).toBe(odd);
    const done = d.send(
      '{"type":"taskComplete","taskId":"tx","success":false,"error":"boom","extra":[1,2]}',
    );
    expect((await server.waitFor((f) => f.msg?.type === "taskComplete")).raw).toBe(done);
    const task = await relay.json("/tasks/tx");
    expect(task).toMatchObject({ taskName: "build things", status: "failed", error: "boom" });
    expect(typeof task.completedAt).toBe("string");
  });

  test("a spoofed taskComplete for another daemon's task gets notYourTask and never reaches the server", async () => {
    const owner = await daemon("owner", 1);
    const thief = await daemon("thief", 1);
    server.spawnTask("secret");
    await owner.waitFor(spawned("secret"));
    thief.complete("secret", true);
    thief.taskOutput("nope", "unknown task");
    const errors = [
      await thief.waitFor(
        (f) => f.msg?.type === "error" && String(f.msg.message).includes("secret"),
      ),
      await thief.waitFor((f) => f.msg?.type === "error" && String(f.msg.message).includes("nope")),
    ];
    expect(errors.map((e) => e.msg.code)).toEqual(["notYourTask", "notYourTask"]);
    // The owner's frame sent afterwards arrives; the thief's never did.
    owner.complete("secret", true);
    await server.waitFor((f) => f.msg?.type === "taskComplete");
    expect(server.framesOfType("taskComplete")).toHaveLength(1);
    expect(server.framesOfType("taskComplete")[0]?.connId).toBe(server.connections[0]?.connId);
    expect(server.framesOfType("taskOutput")).toHaveLength(0);
  });

  test("a daemon with a wrong key is refused with 4401", async () => {
    const intruder = await connectSimDaemon({
      url: relay.daemonUrl,
      apiKey: "wrong",
      machineId: "x",
    });
    const close = await intruder.waitForClose(5000);
    expect(close.code).toBe(4401);
    expect(intruder.received.some((f) => f.msg?.code === "unauthorized")).toBe(true);
    await expect(intruder.authenticated).rejects.toThrow();
  });
});
