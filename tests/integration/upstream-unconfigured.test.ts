/**
 * A relay with a server URL but no MAKIMA_API_KEY does not dial the server
 * (docs/protocol.md "Configuration"): it still accepts daemons with its
 * other keys, and says in /status and in its log what is missing.
 */
import { afterEach, expect, test } from "bun:test";
import { connectSimDaemon, type SimServer, startSimServer } from "../../src/sim/index.ts";
import { startTestRelay, type TestRelay } from "../helpers/relay.ts";

let server: SimServer;
let relay: TestRelay;

afterEach(async () => {
  await relay?.[Symbol.asyncDispose]();
  await server?.stop();
});

test("without MAKIMA_API_KEY the relay never connects upstream, and serves daemons", async () => {
  server = startSimServer();
  relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_API_KEY: "",
      MAKIMA_RELAY_DAEMON_KEYS: "daemon-only-key",
    },
  });
  const said = await relay.logs.waitFor((l) => l.event === "upstream_unconfigured");
  const daemon = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: "daemon-only-key",
    machineId: "m-1",
    hostname: "m-1-host",
    maxConcurrentTasks: 1,
  });
  await daemon.authenticated;
  // By now a relay that dials would have authenticated long ago (a loopback round trip).
  const status = await relay.json<Record<string, unknown>>("/status");
  await daemon.close();
  expect([
    said.details,
    status.upstreamState,
    status.connectedDaemons,
    server.connectionHistory.length + server.received.length,
  ]).toEqual(["Upstream link not started: MAKIMA_API_KEY is not set", "unconfigured", 1, 0]);
});
