/**
 * Relay chaining: a child relay's upstream is a parent relay's /ws/daemon.
 * With `auto` capacity the child advertises the sum of its daemons'
 * capacities and keeps the parent informed with capacityUpdate.
 */
import { expect, test } from "bun:test";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
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
