/**
 * TLS on both sides: daemons over wss:// to the relay, and the relay's
 * upstream link over wss:// to a server whose certificate a private CA signed.
 */
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY } from "../helpers/relay.ts";
import { makeCertificates } from "../helpers/tls.ts";

const certs = makeCertificates();
afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));

test("a task flows over wss on both links with a private CA", async () => {
  await using server = startSimServer({ tls: { cert: certs.cert, key: certs.key } });
  expect(server.url.startsWith("wss://")).toBe(true);
  await using relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_UPSTREAM_CA: certs.caFile,
      MAKIMA_RELAY_TLS_CERT: certs.certFile,
      MAKIMA_RELAY_TLS_KEY: certs.keyFile,
    },
  });
  await server.waitForConnection();
  const health = await fetch(`https://127.0.0.1:${relay.port}/health`, { tls: { ca: certs.ca } });
  expect(await health.json()).toEqual({ healthy: true, upstreamConnected: true });

  await using daemon = await connectSimDaemon({
    url: `wss://127.0.0.1:${relay.port}`,
    apiKey: TEST_KEY,
    machineId: "tls-daemon",
    tls: { ca: certs.ca },
  });
  await daemon.authenticated;
  server.spawnTask("secure-1");
  await daemon.waitFor((f) => f.msg?.taskId === "secure-1");
  const done = daemon.complete("secure-1", true);
  expect((await server.waitFor((f) => f.msg?.type === "taskComplete")).raw).toBe(done);
});

test("without the private CA the upstream link refuses the server's certificate", async () => {
  await using server = startSimServer({ tls: { cert: certs.cert, key: certs.key } });
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url },
  });
  const failure = await relay.logs.waitFor(
    (l) => l.event === "upstream_error" || l.event === "disconnected",
  );
  expect(relay.link.authenticated).toBe(false);
  expect(server.connections).toHaveLength(0);
  expect(String(failure.details)).not.toContain(TEST_KEY);
});
