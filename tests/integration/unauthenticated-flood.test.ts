/**
 * 1,000 sockets that connect and never authenticate: the relay refuses those
 * past its cap with 503, closes the rest after the auth timeout, keeps
 * relaying for the daemons it has, and holds nothing afterwards.
 */
import { expect, test } from "bun:test";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY } from "../helpers/relay.ts";

const FLOOD = 1000;

/** Opens a raw socket and resolves how it ended: closed with a code, or refused. */
function idleSocket(url: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onclose = (ev) => resolve(ev.code);
  });
}

test("a flood of unauthenticated sockets is shed without hurting connected daemons", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_AUTH_TIMEOUT_MS: "1000",
      // Every socket here comes from 127.0.0.1: lift the per-address limit to test the global
      // cap (address-flood.test.ts tests the per-address one).
      MAKIMA_RELAY_MAX_UNAUTHENTICATED_PER_ADDRESS: String(FLOOD),
      MAKIMA_RELAY_LOG_LEVEL: "info",
    },
  });
  await server.waitForConnection();
  await using worker = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "steady",
    maxConcurrentTasks: 100,
  });
  await worker.authenticated;
  Bun.gc(true);
  const heapBefore = process.memoryUsage().heapUsed;

  const ended = Array.from({ length: FLOOD }, () => idleSocket(relay.daemonUrl));
  // While the flood is open, the connected daemon keeps relaying.
  // The first socket to end is one refused past the cap: the flood is then at its height.
  expect(await Promise.race(ended)).not.toBe(4401);
  expect(relay.relay.registry.unauthenticatedCount).toBe(256);
  const busy = await relay.get("/ready");
  expect(busy.status).toBe(503);
  expect(await busy.json()).toEqual({
    ready: false,
    reasons: ["too many connections awaiting authentication"],
  });
  server.spawnTask("during-flood");
  await worker.waitFor((f) => f.msg?.taskId === "during-flood");
  const done = worker.complete("during-flood", true);
  await server.waitFor((f) => f.raw === done);
  expect(relay.relay.registry.unauthenticatedCount).toBeLessThanOrEqual(256);

  const codes = await Promise.all(ended);
  const closedByTimeout = codes.filter((c) => c === 4401).length;
  const refused = codes.filter((c) => c !== 4401).length;
  expect(closedByTimeout).toBeGreaterThan(0);
  expect(closedByTimeout).toBeLessThanOrEqual(256);
  expect(closedByTimeout + refused).toBe(FLOOD);
  expect(relay.relay.registry.unauthenticatedCount).toBe(0);

  // As soon as the flood is shed the relay is ready again and a new daemon gets in.
  expect((await relay.get("/ready")).status).toBe(200);
  await using late = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "late",
  });
  expect(await late.authenticated).toBeString();

  Bun.gc(true);
  const grown = process.memoryUsage().heapUsed - heapBefore;
  console.log(
    `flood: ${closedByTimeout} closed after the auth timeout, ${refused} refused; heap change ${(grown / 1e6).toFixed(1)} MB`,
  );
  expect(grown).toBeLessThan(32 * 1024 * 1024);
}, 30_000);
