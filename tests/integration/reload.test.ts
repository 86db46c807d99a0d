/**
 * Secrets and the certificate change without a restart (relay-reload.ts):
 * on SIGHUP (the binary, a real signal) and POST /admin/reload, the relay
 * re-reads the *_FILE secrets and the TLS files. A revoked daemon key ends
 * its connections with 4401 while other daemons carry on; a changed API key
 * re-authenticates the link; new TLS connections get the new certificate; a
 * file that cannot be used keeps its old value and never takes the relay down.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
import { ensureBinary, freePort, spawnRelayBinary } from "../helpers/binary.ts";
import { startTestRelay, TEST_KEY } from "../helpers/relay.ts";
import { makeCertificates } from "../helpers/tls.ts";

const dir = mkdtempSync(join(tmpdir(), "makima-relay-reload-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, `${text}\n`);
  return path;
};

/** The value of `name{result="…"}` in a /metrics text. */
const reloads = (metrics: string, result: "ok" | "error"): number | undefined => {
  const line = metrics
    .split("\n")
    .find((l) => l.startsWith(`makima_relay_reloads_total{result="${result}"} `));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
};

const LEAKED = "leaked-daemon-key-1111";
const KEPT = "kept-daemon-key-2222";

test("a leaked daemon key is revoked by editing the keys file and sending SIGHUP", async () => {
  await using server = startSimServer();
  const keysFile = file("daemon-keys", `${LEAKED},${KEPT}`);
  const port = await freePort();
  await using relay = spawnRelayBinary({
    binary: await ensureBinary(),
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_API_KEY: TEST_KEY,
      MAKIMA_RELAY_DAEMON_KEYS_FILE: keysFile,
      MAKIMA_RELAY_HOST: "127.0.0.1",
      MAKIMA_RELAY_PORT: String(port),
      MAKIMA_RELAY_DB: join(dir, "sighup.db"),
    },
  });
  await relay.waitForHttp("/health", 10_000);
  await server.waitForConnection();
  const daemon = (machineId: string, apiKey: string) =>
    connectSimDaemon({ url: `ws://127.0.0.1:${port}`, apiKey, machineId, maxConcurrentTasks: 1 });
  await using leaked = await daemon("leaked-machine", LEAKED);
  await using kept = await daemon("kept-machine", KEPT);
  await Promise.all([leaked.authenticated, kept.authenticated]);
  server.spawnTask("on-leaked");
  server.spawnTask("on-kept");
  await leaked.waitFor((f) => f.msg?.type === "spawnTask");
  await kept.waitFor((f) => f.msg?.type === "spawnTask");
  const keptTask = String(kept.framesOfType("spawnTask")[0]?.msg.taskId);

  writeFileSync(keysFile, `${KEPT}\n`);
  relay.kill("SIGHUP");
  const closed = await leaked.waitForClose(5000);
  const reloaded = await relay.waitForLog((l) => l.event === "reload", 5000);
  // The other daemon and its task carry on, and a new connection with the old key is refused.
  const done = kept.complete(keptTask, true);
  expect((await server.waitFor((f) => f.msg?.type === "taskComplete")).raw).toBe(done);
  await using again = await daemon("leaked-machine", LEAKED);
  const refused = await again.waitForClose(5000);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect({
    closed: closed.code,
    reload: [reloaded.result, reloaded.changed, reloaded.revokedMachines],
    refused: refused.code,
    reloadsOk: reloads(metrics, "ok"),
    keyInLogs: relay.stdoutLines.some((l) => l.includes(LEAKED) || l.includes(KEPT)),
  }).toEqual({
    closed: 4401,
    reload: ["ok", ["MAKIMA_RELAY_DAEMON_KEYS"], 1],
    refused: 4401,
    reloadsOk: 1,
    keyInLogs: false,
  });
}, 60_000);

describe("POST /admin/reload", () => {
  test("a changed API key re-authenticates the upstream link with it", async () => {
    await using server = startSimServer();
    const keyFile = file("api-key", "first-api-key");
    await using relay = await startTestRelay({
      env: { MAKIMA_SERVER_URL: server.url, MAKIMA_API_KEY: "", MAKIMA_API_KEY_FILE: keyFile },
    });
    const first = await server.waitForConnection();
    writeFileSync(keyFile, "second-api-key\n");
    const outcome = await relay.json("/admin/reload", { method: "POST" });
    const second = await server.waitForConnection(5000, (c) => c.connId !== first.connId);
    expect([first.apiKey, second.apiKey, outcome]).toEqual([
      "first-api-key",
      "second-api-key",
      { result: "ok", changed: ["MAKIMA_API_KEY"], errors: [], revoked: [] },
    ]);
    // A key change is not a link drop: it was the relay that asked. The new key is masked in logs.
    expect({
      linkDrops: (await relay.json<{ linkDrops: number }>("/status")).linkDrops,
      keyInLogs: JSON.stringify(relay.logs.items).includes("second-api-key"),
    }).toEqual({ linkDrops: 0, keyInLogs: false });
  });

  test("a changed admin token is the one write routes want from then on", async () => {
    const tokenFile = file("admin-token", "first-admin-token");
    await using relay = await startTestRelay({
      env: { MAKIMA_RELAY_ADMIN_TOKEN_FILE: tokenFile },
    });
    const reload = (token: string) =>
      relay.get("/admin/reload", { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect((await relay.get("/admin/reload", { method: "POST" })).status).toBe(401);
    writeFileSync(tokenFile, "second-admin-token\n");
    const first = await reload("first-admin-token");
    expect([first.status, ((await first.json()) as { changed: string[] }).changed]).toEqual([
      200,
      ["MAKIMA_RELAY_ADMIN_TOKEN"],
    ]);
    expect([
      (await reload("first-admin-token")).status,
      (await reload("second-admin-token")).status,
    ]).toEqual([401, 200]);
  });

  test("a file that cannot be read keeps its old value, says which, and the relay goes on", async () => {
    await using server = startSimServer();
    const keysFile = file("keys-to-delete", "still-good-key-3333");
    await using relay = await startTestRelay({
      env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_DAEMON_KEYS_FILE: keysFile },
    });
    rmSync(keysFile);
    const outcome = await relay.json<{ result: string; errors: string[] }>("/admin/reload", {
      method: "POST",
    });
    await using daemon = await connectSimDaemon({
      url: relay.daemonUrl,
      apiKey: "still-good-key-3333",
      machineId: "after-failed-reload",
    });
    await daemon.authenticated;
    const logged = await relay.logs.waitFor((l) => l.event === "reload");
    const metrics = await (await relay.get("/metrics")).text();
    expect({
      result: outcome.result,
      errors: outcome.errors,
      level: logged.level,
      errorsCounted: reloads(metrics, "error"),
    }).toEqual({
      result: "error",
      errors: [
        `MAKIMA_RELAY_DAEMON_KEYS (--daemon-keys): cannot read MAKIMA_RELAY_DAEMON_KEYS_FILE ${keysFile}`,
      ],
      level: "error",
      errorsCounted: 1,
    });
  });
});

describe("TLS certificate reload", () => {
  const certs = makeCertificates();
  afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));

  /** The serial number of the certificate a new TLS connection to `port` is shown. */
  const servedSerial = (port: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port,
        ca: certs.ca,
        servername: "localhost",
      });
      socket.once("secureConnect", () => {
        resolve(socket.getPeerCertificate().serialNumber);
        socket.end();
      });
      socket.once("error", reject);
    });
  const serialOf = (pem: string): string => new X509Certificate(pem).serialNumber;

  test("new connections get the new certificate; open ones carry on; a broken one is refused", async () => {
    await using server = startSimServer();
    await using relay = await startTestRelay({
      env: {
        MAKIMA_SERVER_URL: server.url,
        MAKIMA_RELAY_TLS_CERT: certs.certFile,
        MAKIMA_RELAY_TLS_KEY: certs.keyFile,
      },
    });
    await using daemon = await connectSimDaemon({
      url: `wss://127.0.0.1:${relay.port}`,
      apiKey: TEST_KEY,
      machineId: "open-through-reload",
      tls: { ca: certs.ca },
    });
    await daemon.authenticated;
    const before = await servedSerial(relay.port);

    writeFileSync(certs.certFile, certs.second.cert);
    writeFileSync(certs.keyFile, certs.second.key);
    const post = () =>
      fetch(`https://127.0.0.1:${relay.port}/admin/reload`, {
        method: "POST",
        tls: { ca: certs.ca },
      }).then((r) => r.json() as Promise<{ result: string; changed: string[]; errors: string[] }>);
    const swapped = await post();
    const after = await servedSerial(relay.port);
    server.spawnTask("after-swap");
    await daemon.waitFor((f) => f.msg?.taskId === "after-swap");

    // A key that is not the certificate's: refused, the current pair kept.
    writeFileSync(certs.keyFile, certs.key);
    const broken = await post();
    const stillServed = await servedSerial(relay.port);
    expect({
      before: before === serialOf(certs.cert),
      swapped: [swapped.result, swapped.changed],
      after: after === serialOf(certs.second.cert),
      broken: [broken.result, broken.errors],
      stillServed: stillServed === serialOf(certs.second.cert),
    }).toEqual({
      before: true,
      swapped: ["ok", ["MAKIMA_RELAY_TLS_CERT"]],
      after: true,
      broken: [
        "error",
        [`MAKIMA_RELAY_TLS_KEY ${certs.keyFile}: not the key of ${certs.certFile}`],
      ],
      stillServed: true,
    });
  });
});
