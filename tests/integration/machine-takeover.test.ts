/**
 * Two daemon pools with their own keys (MAKIMA_RELAY_DAEMON_KEYS): a daemon
 * holding pool B's key cannot take over a pool A machineId, neither while the
 * victim is connected nor after a relay restart on the same database; the
 * victim keeps its tasks and the server's commands for them. The same key
 * still replaces (4409); an operator can release a binding over HTTP.
 */
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { connectSimDaemon, type SimDaemon, startSimServer } from "../../src/sim/index.ts";
import { startTestRelay } from "../helpers/relay.ts";

const POOL_A = "pool-a-key-0123456789";
const POOL_B = "pool-b-key-9876543210";
const ENV = { MAKIMA_RELAY_DAEMON_KEYS: `${POOL_A},${POOL_B}` };

const daemon = (url: string, apiKey: string, machineId: string) =>
  connectSimDaemon({ url, apiKey, machineId, maxConcurrentTasks: 2 });

async function refused(d: SimDaemon): Promise<unknown> {
  const error = await d.waitFor((f) => f.msg?.type === "error");
  return { error: error.msg, close: (await d.waitForClose()).code };
}

test("another pool's key cannot take over a machineId, before or after a restart", async () => {
  await using server = startSimServer();
  const first = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, ...ENV },
    keepDir: true,
  });
  const { dir } = first;
  let upstream = await server.waitForConnection();
  {
    await using victim = await daemon(first.daemonUrl, POOL_A, "gpu-01");
    await victim.authenticated;
    server.spawnTask("secret-task", "a pool A task", {}, upstream.connId);
    await victim.waitFor((f) => f.msg?.type === "spawnTask");

    await using attacker = await daemon(first.daemonUrl, POOL_B, "gpu-01");
    expect(await refused(attacker)).toEqual({
      error: {
        type: "error",
        code: "unauthorized",
        message: "this machineId is bound to another key",
      },
      close: 4401,
    });
    // The victim still holds the task, and the server's messages for it go to the victim.
    const msg = server.send(
      { type: "sendMessage", taskId: "secret-task", message: "hi" },
      upstream.connId,
    );
    await victim.waitFor((f) => f.raw === msg);
    expect(victim.closed).toBeUndefined();
    expect(attacker.received.some((f) => f.raw === msg)).toBe(false);
    const daemons = await first.json<{ daemons: { machineId: string; taskIds: string[] }[] }>(
      "/daemons",
    );
    expect(daemons.daemons).toEqual([
      expect.objectContaining({ machineId: "gpu-01", taskIds: ["secret-task"] }),
    ]);

    // A security event naming the address and machineId, never a key; /logs shows it.
    const line = await first.logs.waitFor((l) => l.event === "machine_takeover_refused");
    expect(line.level).toBe("warn");
    expect(String(line.details)).toContain("127.0.0.1");
    expect(String(line.details)).toContain("gpu-01");
    const logs = await first.json<{ logs: { event: string; details: string }[] }>("/logs");
    expect(logs.logs.filter((l) => l.event === "machine_takeover_refused")).toHaveLength(1);
    expect(JSON.stringify(logs)).not.toContain(POOL_A);
    expect(JSON.stringify(logs)).not.toContain(POOL_B);

    // The same key still replaces the connection: that is how a daemon reconnects.
    await using again = await daemon(first.daemonUrl, POOL_A, "gpu-01");
    await again.authenticated;
    expect((await victim.waitForClose()).code).toBe(4409);
    await again.close();
  }
  await first.stop();

  // Restart on the same database: the binding is still there.
  try {
    await using second = await startTestRelay({
      env: { MAKIMA_SERVER_URL: server.url, ...ENV },
      dir,
    });
    upstream = await server.waitForConnection(5000, (c) => c.connId !== upstream.connId);
    await using late = await daemon(second.daemonUrl, POOL_B, "gpu-01");
    expect(await refused(late)).toMatchObject({ close: 4401 });
    await using owner = await daemon(second.daemonUrl, POOL_A, "gpu-01");
    expect(await owner.authenticated).toBeString();
    // Pool B's own machines bind to pool B's key just the same.
    await using other = await daemon(second.daemonUrl, POOL_B, "cpu-07");
    expect(await other.authenticated).toBeString();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 20_000);

test("DELETE /daemons/:machineId releases a binding (404 without one); ?disconnect=true closes its daemon", async () => {
  await using relay = await startTestRelay({ env: ENV });
  await using owner = await daemon(relay.daemonUrl, POOL_A, "gpu-02");
  await owner.authenticated;

  const del = (path: string) => relay.get(path, { method: "DELETE" });
  const none = await del("/daemons/no-such-machine");
  expect([none.status, await none.json()]).toEqual([
    404,
    { error: "no binding for this machineId" },
  ]);

  const kept = await del("/daemons/gpu-02");
  expect([kept.status, await kept.json()]).toEqual([
    200,
    {
      machineId: "gpu-02",
      released: true,
      disconnected: false,
      message: "binding released; the next key to authenticate with this machineId takes it",
    },
  ]);
  expect(owner.closed).toBeUndefined();
  await relay.logs.waitFor((l) => l.event === "binding_released");

  // Released: pool B's key may now take the machineId (the owner is replaced, 4409).
  await using newcomer = await daemon(relay.daemonUrl, POOL_B, "gpu-02");
  await newcomer.authenticated;
  expect((await owner.waitForClose()).code).toBe(4409);

  const closed = await del("/daemons/gpu-02?disconnect=true");
  const body = (await closed.json()) as { disconnected: boolean };
  expect([closed.status, body.disconnected]).toEqual([200, true]);
  expect((await newcomer.waitForClose()).code).toBe(4401);
  expect((await del("/daemons/gpu-02")).status).toBe(404);
  expect((await del("/daemons/gpu-02?disconnect=maybe")).status).toBe(400);
});

test("DELETE /daemons/:machineId is a write route: a token is needed when one is set", async () => {
  await using relay = await startTestRelay({
    env: { ...ENV, MAKIMA_RELAY_ADMIN_TOKEN: "admin-token-0123" },
  });
  await using owner = await daemon(relay.daemonUrl, POOL_A, "gpu-03");
  await owner.authenticated;
  const without = await relay.get("/daemons/gpu-03", { method: "DELETE" });
  expect(without.status).toBe(401);
  const withToken = await relay.get("/daemons/gpu-03", {
    method: "DELETE",
    headers: { authorization: "Bearer admin-token-0123" },
  });
  expect(withToken.status).toBe(200);
});
