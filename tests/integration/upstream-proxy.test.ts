/**
 * The upstream link through an HTTP CONNECT proxy (the `proxy` package under
 * Node.js, tests/helpers/connect-proxy.mjs): ws:// and wss:// (TLS to the
 * server inside the tunnel, with the private CA) reach the sim server; the
 * proxy's credentials are sent from its URL and required (407 without); a
 * proxy that refuses (403) or drops the tunnel is an ordinary upstream
 * failure with backoff, shown in /status, until it lets the link through;
 * NO_PROXY and loopback addresses bypass HTTPS_PROXY/HTTP_PROXY; and the
 * proxy's password appears in no log line and not in /status.
 */
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { startSimServer } from "../../src/sim/index.ts";
import { startTestRelay, type TestRelay } from "../helpers/relay.ts";
import { makeCertificates } from "../helpers/tls.ts";
import { type NodePeer, startNodeScript } from "../helpers/ws-peers.ts";

const certs = makeCertificates();
afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));

const PASSWORD = "s3cret:p@ss/word";
const CREDENTIALS = `relay:${PASSWORD}`;
const proxyUrl = (proxy: NodePeer, credentials = CREDENTIALS) =>
  `http://${credentials ? `relay:${encodeURIComponent(PASSWORD)}@` : ""}127.0.0.1:${proxy.hello.port}`;

const tunnels = (proxy: NodePeer) =>
  proxy.log.events.filter((e) => e.event === "connect" && e.outcome === "tunnel");

/** Nothing the relay said or shows contains the proxy's password, plain or URL-encoded. */
async function expectNoPassword(relay: TestRelay): Promise<void> {
  const status = await (await relay.get("/status")).text();
  const logs = JSON.stringify(relay.logs.items);
  for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), btoa(CREDENTIALS)]) {
    expect(logs).not.toContain(secret);
    expect(status).not.toContain(secret);
  }
}

test("ws:// through the proxy, with its credentials, reaches the server", async () => {
  await using proxy = await startNodeScript("connect-proxy.mjs", ["--auth", CREDENTIALS]);
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_UPSTREAM_PROXY: proxyUrl(proxy) },
  });
  await server.waitForConnection();
  const [tunnel] = tunnels(proxy);
  expect(tunnel?.target).toBe(`127.0.0.1:${new URL(server.url).port}`);
  expect(tunnel?.auth).toBe(`Basic ${btoa(CREDENTIALS)}`);
  // The config line names the proxy, without its credentials.
  const config = relay.logs.items.find((l) => l.event === "config");
  expect(config?.upstreamProxy).toBe(`http://127.0.0.1:${proxy.hello.port}/`);
  await expectNoPassword(relay);
});

test("wss:// through the proxy: TLS to the server inside the tunnel, with the private CA", async () => {
  await using proxy = await startNodeScript("connect-proxy.mjs");
  await using server = startSimServer({ tls: { cert: certs.cert, key: certs.key } });
  expect(server.url.startsWith("wss://")).toBe(true);
  await using relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_UPSTREAM_PROXY: proxyUrl(proxy, ""),
      MAKIMA_RELAY_UPSTREAM_CA: certs.caFile,
    },
  });
  await relay.logs.waitFor((l) => l.event === "authenticated");
  expect(relay.link.authenticated).toBe(true);
  expect(tunnels(proxy).map((t) => [t.target, t.auth])).toEqual([
    [`127.0.0.1:${new URL(server.url).port}`, null],
  ]);
});

test("wss:// through the proxy without the private CA: the certificate is refused", async () => {
  await using proxy = await startNodeScript("connect-proxy.mjs");
  await using server = startSimServer({ tls: { cert: certs.cert, key: certs.key } });
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_UPSTREAM_PROXY: proxyUrl(proxy, "") },
  });
  const failure = await relay.logs.waitFor((l) => l.event === "upstream_error");
  expect(String(failure.details)).toContain(`TLS to 127.0.0.1:${new URL(server.url).port}`);
  expect(server.connections).toHaveLength(0);
  expect(tunnels(proxy).length).toBeGreaterThan(0);
});

test("without credentials the proxy answers 407: an upstream failure with backoff, its reason in /status", async () => {
  await using proxy = await startNodeScript("connect-proxy.mjs", ["--auth", CREDENTIALS]);
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_UPSTREAM_PROXY: proxyUrl(proxy, "") },
  });
  await proxy.log.until((e) => e.outcome === "407");
  await relay.logs.waitFor((l) => l.event === "disconnected");
  const status = await relay.json<Record<string, unknown>>("/status");
  expect(String(status.lastDisconnectReason)).toContain("407");
  expect(server.connections).toHaveLength(0);
});

test("a refusing proxy (403) means backoff and the reason in /status, then the link once it allows", async () => {
  await using proxy = await startNodeScript("connect-proxy.mjs", ["--auth", CREDENTIALS]);
  proxy.tell("deny");
  await proxy.log.until((e) => e.event === "told");
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_UPSTREAM_PROXY: proxyUrl(proxy) },
  });
  // Two refusals: the link tried again after a backoff.
  await proxy.log.until(
    (e) => proxy.log.events.filter((x) => x.outcome === "403").length >= 2 && e.outcome === "403",
  );
  const status = await relay.json<Record<string, unknown>>("/status");
  expect(String(status.lastDisconnectReason)).toContain("403 Forbidden");
  expect(String(status.lastDisconnectReason)).toContain(`proxy 127.0.0.1:${proxy.hello.port}`);
  expect(Number(status.reconnectAttempts)).toBeGreaterThan(0);
  proxy.tell("allow");
  await relay.logs.waitFor((l) => l.event === "authenticated");
  expect(relay.link.authenticated).toBe(true);
  await expectNoPassword(relay);
});

test("a proxy that drops the tunnel: the link reconnects through it", async () => {
  await using proxy = await startNodeScript("connect-proxy.mjs");
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_UPSTREAM_PROXY: proxyUrl(proxy, "") },
  });
  await relay.logs.waitFor((l) => l.event === "authenticated");
  const before = relay.logs.items.length;
  proxy.tell("drop");
  await relay.logs.waitFor((l) => l.event === "disconnected", 5000, before);
  await relay.logs.waitFor((l) => l.event === "authenticated", 5000, before);
  expect(tunnels(proxy)).toHaveLength(2);
  expect(relay.link.authenticated).toBe(true);
});

test("an unreachable proxy is an upstream failure that names the proxy without its password", async () => {
  await using server = startSimServer();
  // A port nothing listens on: the one a just-stopped server had.
  const gone = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = gone.port;
  gone.stop(true);
  await using relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_UPSTREAM_PROXY: `http://relay:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`,
    },
  });
  await relay.logs.waitFor((l) => l.event === "disconnected");
  const status = await relay.json<Record<string, unknown>>("/status");
  expect(String(status.lastDisconnectReason)).toContain(`cannot reach proxy 127.0.0.1:${port}`);
  await expectNoPassword(relay);
});

test("HTTP_PROXY leaves loopback servers alone; NO_PROXY names servers reached directly", async () => {
  await using proxy = await startNodeScript("connect-proxy.mjs");
  // Loopback: direct, whatever HTTP_PROXY says.
  {
    await using server = startSimServer();
    await using relay = await startTestRelay({
      env: { MAKIMA_SERVER_URL: server.url, HTTP_PROXY: proxyUrl(proxy, "") },
    });
    await relay.logs.waitFor((l) => l.event === "authenticated");
    expect(relay.link.authenticated).toBe(true);
  }
  // A non-loopback address of this machine: through HTTP_PROXY, unless NO_PROXY names it.
  const address = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
  if (!address) throw new Error("this test needs a non-loopback IPv4 address on the machine");
  await using server = startSimServer({ hostname: "0.0.0.0" });
  const url = `ws://${address}:${new URL(server.url).port}/ws/daemon`;
  {
    await using relay = await startTestRelay({
      env: {
        MAKIMA_SERVER_URL: url,
        http_proxy: proxyUrl(proxy, ""),
        NO_PROXY: `example.org, ${address}`,
      },
    });
    await relay.logs.waitFor((l) => l.event === "authenticated");
    expect(relay.link.authenticated).toBe(true);
    expect(tunnels(proxy)).toEqual([]);
  }
  {
    await using relay = await startTestRelay({
      env: { MAKIMA_SERVER_URL: url, http_proxy: proxyUrl(proxy, ""), NO_PROXY: "example.org" },
    });
    await proxy.log.until(() => tunnels(proxy).length === 1);
    expect(tunnels(proxy)[0]?.target).toBe(`${address}:${new URL(server.url).port}`);
    await relay.logs.waitFor((l) => l.event === "authenticated");
  }
});
