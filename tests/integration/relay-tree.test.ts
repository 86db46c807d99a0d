/**
 * Relay chaining: a child relay's upstream is a parent relay's /ws/daemon.
 * With `auto` capacity the child advertises the sum of its daemons'
 * capacities and keeps the parent informed with capacityUpdate.
 */
import { expect, test } from "bun:test";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
import { metric, pollUntil } from "../helpers/probes.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";

interface DaemonView {
  machineId: string;
  maxConcurrentTasks: number;
  role: string;
}

async function childCapacity(parent: TestRelay, machineId: string): Promise<number | undefined> {
  const { daemons } = await parent.json<{ daemons: DaemonView[] }>("/daemons");
  return daemons.find((d) => d.machineId === machineId)?.maxConcurrentTasks;
}

test("tasks flow server → parent → child → daemon and back; auto capacity follows the daemons", async () => {
  await using server = startSimServer();
  await using parent = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  await server.waitForConnection();
  await using child = await startTestRelay({
    env: { MAKIMA_SERVER_URL: parent.daemonUrl, MAKIMA_RELAY_ADVERTISE_CAPACITY: "auto" },
  });
  await parent.logs.waitFor(
    (l) => l.event === "downstream_connect" && String(l.details).includes(child.machineId),
  );
  expect(await childCapacity(parent, child.machineId)).toBe(0);

  await using d1 = await connectSimDaemon({
    url: child.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "leaf-1",
    maxConcurrentTasks: 2,
  });
  await d1.authenticated;
  await using d2 = await connectSimDaemon({
    url: child.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "leaf-2",
    maxConcurrentTasks: 3,
  });
  await d2.authenticated;
  const { daemons } = await parent.json<{ daemons: DaemonView[] }>("/daemons");
  expect(daemons.find((d) => d.machineId === child.machineId)?.role).toBe("relay");

  for (let i = 0; i < 5; i++) server.spawnTask(`tree-${i}`);
  const leaves = [d1, d2];
  const spawned = async (id: string) =>
    Promise.race(
      leaves.map((d) => d.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === id)),
    );
  for (let i = 0; i < 5; i++) await spawned(`tree-${i}`);
  // Dispatching five tasks needed the child's advertised capacity to reach 2 + 3.
  expect([d1.activeTasks.size, d2.activeTasks.size]).toEqual([2, 3]);

  const pause = server.pauseTask("tree-0");
  const holder = d1.activeTasks.has("tree-0") ? d1 : d2;
  await holder.waitFor((f) => f.raw === pause);
  const out = holder.taskOutput("tree-0", "from the leaf");
  const done = holder.complete("tree-0", true);
  await server.waitFor((f) => f.raw === done);
  expect(server.received.some((f) => f.raw === out)).toBe(true);
  // capacityUpdate is relay-to-relay only: the real server never sees it.
  expect(server.framesOfType("capacityUpdate")).toHaveLength(0);
  expect(await childCapacity(parent, child.machineId)).toBe(5);
});

test("a parent dispatches by the capacity a child relay last advertised", async () => {
  await using server = startSimServer();
  await using parent = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  await server.waitForConnection();
  await using child = await startTestRelay({
    env: { MAKIMA_SERVER_URL: parent.daemonUrl, MAKIMA_RELAY_ADVERTISE_CAPACITY: "auto" },
  });
  await parent.logs.waitFor((l) => l.event === "downstream_connect");
  server.spawnTask("waits");
  await parent.logs.waitFor((l) => l.event === "task_queued" && l.taskId === "waits");
  // A daemon joins the child: capacityUpdate raises the child's capacity at the parent, which dispatches.
  await using leaf = await connectSimDaemon({
    url: child.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "leaf",
    maxConcurrentTasks: 1,
  });
  await leaf.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === "waits");
  expect(await childCapacity(parent, child.machineId)).toBe(1);
});

test.each([["0"], ["7"]])(
  "with advertised capacity %s the relay never sends capacityUpdate",
  async (mode) => {
    await using server = startSimServer();
    await using relay = await startTestRelay({
      env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_ADVERTISE_CAPACITY: mode },
    });
    const conn = await server.waitForConnection();
    expect(conn.maxConcurrentTasks).toBe(Number(mode));
    await using leaf = await connectSimDaemon({
      url: relay.daemonUrl,
      apiKey: TEST_KEY,
      machineId: "leaf",
      maxConcurrentTasks: 4,
    });
    await leaf.authenticated;
    leaf.send({ type: "marker" });
    await server.waitFor((f) => f.msg?.type === "marker");
    expect(server.framesOfType("capacityUpdate")).toHaveLength(0);
  },
);

interface ChildStatus {
  upstreamState: string;
  pendingTasks: number;
  reconnectAttempts: number;
  linkDrops: number;
  lastDisconnectReason: string | null;
}

test("a child holding more tasks than one heartbeat frame can list keeps its parent: the heartbeat goes in parts", async () => {
  const TASKS = 400;
  await using server = startSimServer();
  // 400 ids of 15 characters make a heartbeat of ~7 KB: past this parent's frame limit.
  await using parent = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_MAX_FRAME_BYTES: "2048" },
  });
  await server.waitForConnection();
  await using child = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: parent.daemonUrl,
      MAKIMA_RELAY_ADVERTISE_CAPACITY: String(TASKS),
      MAKIMA_RELAY_HEARTBEAT_MS: "50",
    },
  });
  await parent.logs.waitFor((l) => l.event === "downstream_connect");
  for (let i = 0; i < TASKS; i++) server.spawnTask(`queued-${String(i).padStart(5, "0")}`);
  // The child has no daemons: every task waits in its queue.
  await child.logs.waitFor((l) => l.event === "task_queued" && l.queued === TASKS);
  const queuedAt = Date.now();

  // Three heartbeats the parent accepted whole (its last part), each listing all 400.
  for (let beat = 0; beat < 3; beat++) {
    const after = Date.now();
    await pollUntil(
      () => parent.json<{ daemons: { lastHeartbeat: string | null }[] }>("/daemons"),
      (b) => Date.parse(b.daemons[0]?.lastHeartbeat ?? "") >= Math.max(after, queuedAt),
    );
  }
  const status = await child.json<ChildStatus>("/status");
  expect({
    upstreamState: status.upstreamState,
    pendingTasks: status.pendingTasks,
    linkDrops: status.linkDrops,
    parentSawDisconnect: parent.logs.items.some((l) => l.event === "downstream_disconnect"),
    lostAtParent: (await parent.json<{ total: number }>("/tasks?status=lost")).total,
    heldByChild: (await parent.json<{ daemons: { activeTasks: number }[] }>("/daemons")).daemons[0]
      ?.activeTasks,
  }).toEqual({
    upstreamState: "open",
    pendingTasks: TASKS,
    linkDrops: 0,
    parentSawDisconnect: false,
    lostAtParent: 0,
    heldByChild: TASKS,
  });
}, 15_000);

test("/status and /metrics count a link that drops, with its code and reason, though each reconnect succeeds", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  // The relay's own view: its link is authenticated before each drop.
  await relay.logs.waitFor((l) => l.event === "authenticated");
  for (const n of [1, 2]) {
    const back = relay.logs.waitForNext((l) => l.event === "authenticated");
    server.disconnectAll(1009, `frame too large ${n}`);
    await back;
  }
  const status = await relay.json<ChildStatus & { lastDisconnectAt: string | null }>("/status");
  expect(status).toMatchObject({
    upstreamState: "open",
    // Each link lasted under 30 s: the attempts still count, and the server is flapping.
    reconnectAttempts: 2,
    upstreamFlapping: true,
    linkDrops: 2,
    lastDisconnectReason: "code 1009: frame too large 2",
    lastDisconnectAt: expect.any(String),
  });
  expect(await metric(relay, "makima_relay_upstream_link_drops_total")).toBe(2);
});
