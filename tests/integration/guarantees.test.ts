/**
 * Promises the README and docs/protocol.md make that no other test injects a
 * fault against, one test each: flow control with a server that stops
 * reading, a bug triggered by one frame, the outbox-nearly-full readiness
 * signal, held commands across a restart, and a command re-held after its
 * send was dropped by a closing socket.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { UpstreamTransport } from "../../src/core/upstream-socket.ts";
import {
  connectSimDaemon,
  type SimDaemon,
  type SimDaemonOptions,
  startSimServer,
} from "../../src/sim/index.ts";
import { createBatchedUpstreamTransport } from "../../src/transport/upstream-batched-socket.ts";
import { barrier, isSpawn } from "../helpers/frames.ts";
import { pollUntil, quietFor, ready } from "../helpers/probes.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";

const MB = 1024 * 1024;

async function daemonOn(
  relay: TestRelay,
  machineId: string,
  extra: Partial<SimDaemonOptions> = {},
): Promise<SimDaemon> {
  const d = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId,
    maxConcurrentTasks: 1,
    ...extra,
  });
  await d.authenticated;
  return d;
}

test("a server that stops reading pauses the daemons end to end: nothing is lost, nobody is closed for silence", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_DAEMON_TIMEOUT_MS: "400",
      // Not the rate limit: only the server's pace may slow this daemon.
      MAKIMA_RELAY_DAEMON_RATE: "100000",
      MAKIMA_RELAY_DAEMON_BYTE_RATE: String(1024 * MB),
      // Smaller than the stream: had the relay kept reading, the outbox would have dropped output.
      MAKIMA_RELAY_OUTBOX_MAX_BYTES: String(4 * MB),
    },
  });
  await server.waitForConnection();
  await using d = await daemonOn(relay, "producer", { heartbeatMs: 100 });
  server.spawnTask("stream");
  await d.waitFor(isSpawn("stream"));

  server.pauseReading();
  const pad = "x".repeat(256 * 1024);
  // 32 MB: more than the loopback TCP buffers on both links (autotuned, up to ~10 MB each)
  // plus the upstream socket's 4 MB high-water mark, so the relay had to stop reading. Sent
  // 1 MB per turn: the relay shares this process's event loop, and one 32 MB turn would
  // stall its timers past the liveness timeout before it could read a byte.
  const sent: string[] = [];
  for (let i = 0; i < 128; i++) {
    sent.push(d.send({ type: "taskOutput", taskId: "stream", output: `${i} ${pad}` }));
    if (i % 4 === 3) await new Promise((resolve) => setImmediate(resolve));
  }
  sent.push(d.complete("stream", true));

  // The relay stops reading the daemon (nothing to wait on but its state).
  const daemon = relay.relay.registry.byMachineId("producer");
  if (!daemon) throw new Error("the producer is not registered");
  await pollUntil(
    async () => relay.relay.liveness.isReading(daemon),
    (reading) => !reading,
    5000,
    5,
  );
  // Held there for three liveness timeouts; heartbeats wait in TCP behind the stream.
  await quietFor(1200);
  // Paused, not buffering: at most the last socket read (512 KB) reached the outbox.
  expect({
    closed: d.closed,
    reading: relay.relay.liveness.isReading(daemon),
    outboxAtMost1MB: relay.outbox.stats().bytes <= MB,
  }).toEqual({ closed: undefined, reading: false, outboxAtMost1MB: true });

  server.resumeReading();
  await server.waitFor((f) => f.raw === sent.at(-1), 8000);
  const got = server.received
    .filter((f) => f.msg?.taskId === "stream" && f.msg?.type !== "spawnTask")
    .map((f) => f.raw);
  expect(got.length).toBe(sent.length);
  expect(got).toEqual(sent);
  expect(relay.outbox.counters.droppedFrames).toBe(0);
  expect(d.closed).toBeUndefined();
  expect(relay.logs.items.filter((l) => l.event === "daemon_silent")).toEqual([]);
}, 15_000);

test("a bug triggered by one daemon frame is logged as internal_error; that daemon, the others and the relay go on", async () => {
  await using server = startSimServer();
  // A planted bug: the upstream socket throws on one particular frame, deep inside
  // the handling of a daemon's message (docs/style.md, fault points).
  const real = createBatchedUpstreamTransport();
  const buggy: UpstreamTransport = (url, handlers) => {
    const socket = real(url, handlers);
    const send = socket.send.bind(socket);
    socket.send = (text) => {
      if (text.includes("POISON")) throw new TypeError("planted bug: cannot relay POISON");
      return send(text);
    };
    return socket;
  };
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url },
    overrides: { transport: buggy },
  });
  await server.waitForConnection();
  await using victim = await daemonOn(relay, "victim");
  await using bystander = await daemonOn(relay, "bystander");
  server.spawnTask("tv");
  server.spawnTask("tb");
  await victim.waitFor(isSpawn("tv"));
  await bystander.waitFor(isSpawn("tb"));

  victim.taskOutput("tv", "POISON");
  const bug = await relay.logs.waitFor((l) => l.event === "internal_error", 3000);
  expect(bug).toMatchObject({ level: "error", where: "message" });
  expect(String(bug.error)).toContain("planted bug");

  // The same connection carries on, and so does everyone else.
  const after = [victim.taskOutput("tv", "fine after the bug"), victim.complete("tv", true)];
  const other = bystander.complete("tb", true);
  await server.waitFor((f) => f.raw === after.at(-1), 3000);
  await server.waitFor((f) => f.raw === other, 3000);
  expect(
    server.received
      .filter((f) => f.msg?.taskId === "tv" && f.msg?.type !== "spawnTask")
      .map((f) => f.raw),
  ).toEqual(after);
  server.spawnTask("later");
  await victim.waitFor(isSpawn("later"));
  expect({ victim: victim.closed, bystander: bystander.closed }).toEqual({
    victim: undefined,
    bystander: undefined,
  });
  expect((await relay.get("/health")).status).toBe(200);
  expect(relay.logs.items.filter((l) => l.event === "internal_error")).toHaveLength(1);
});

test('/ready answers 503 "outbox nearly full" past 90 % of MAKIMA_RELAY_OUTBOX_MAX_BYTES, and 200 once it drains', async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_OUTBOX_MAX_BYTES: "10000" },
  });
  await server.waitForConnection();
  await using d = await daemonOn(relay, "writer");
  server.spawnTask("out");
  await d.waitFor(isSpawn("out"));
  await server.stop();
  await relay.logs.waitFor((l) => l.event === "disconnected");

  const line = (i: number) => d.taskOutput("out", `${i} ${"y".repeat(440)}`);
  // About 2.5 KB held: an unreachable server alone does not make the relay unready.
  for (let i = 0; i < 5; i++) line(i);
  await barrier(d);
  expect(await ready(relay)).toEqual({ status: 200, ready: true, reasons: [] });

  // Past 9,000 bytes (and under the limit, so nothing is dropped yet).
  for (let i = 5; i < 19; i++) line(i);
  await barrier(d);
  const bytes = relay.outbox.stats().bytes;
  expect(bytes).toBeGreaterThan(9000);
  expect(bytes).toBeLessThanOrEqual(10000);
  const full = await ready(relay);
  expect({ status: full.status, reasons: full.reasons }).toEqual({
    status: 503,
    reasons: ["outbox nearly full"],
  });

  server.restart();
  await server.waitFor((f) => f.msg?.output?.startsWith("18 "), 5000);
  await pollUntil(
    () => ready(relay),
    (r) => r.status === 200,
    3000,
  );
  expect(relay.outbox.counters.droppedFrames).toBe(0);
});

test("commands held for a queued task survive a restart and follow its spawnTask, in order", async () => {
  await using server = startSimServer();
  const dir = mkdtempSync(join(tmpdir(), "makima-relay-held-"));
  try {
    const first = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url }, dir });
    const up1 = await server.waitForConnection();
    const spawn = server.spawnTask("waiting", "queued across a restart", {}, up1.connId);
    const held = [
      server.pauseTask("waiting", up1.connId),
      server.sendMessage("waiting", "read this first", up1.connId),
      server.resumeTask("waiting", up1.connId),
    ];
    // Server frames are handled in order: once "marker" is queued, the commands are held.
    server.spawnTask("marker", "marker", {}, up1.connId);
    await first.logs.waitFor((l) => l.event === "task_queued" && l.taskId === "marker");
    await first.stop();

    await using second = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url }, dir });
    await server.waitForConnection(5000, (c) => c.connId !== up1.connId);
    expect((await second.json("/status")).pendingTasks).toBe(2);
    await using d = await daemonOn(second, "late", { maxConcurrentTasks: 1 });
    await d.waitFor((f) => f.raw === held.at(-1), 5000);
    expect(d.received.filter((f) => f.msg?.taskId === "waiting").map((f) => f.raw)).toEqual([
      spawn,
      ...held,
    ]);
    // Delivered means no longer held: a later restart would not send them again.
    expect(second.stores.tasks.heldCommands("waiting")).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a command whose send is dropped by a closing socket is held and delivered when the daemon reattaches", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_GRACE_MS: "10000" },
  });
  await server.waitForConnection();
  const before = await daemonOn(relay, "flaky");
  server.spawnTask("job");
  await before.waitFor(isSpawn("job"));

  // One turn, as when the daemon's close and the server's command land in the same
  // event-loop iteration: a write is pending (so the command's send waits for the
  // commit), the command is routed to the daemon, then its socket closes before the commit.
  const command = JSON.stringify({ type: "sendMessage", taskId: "job", message: "are you there?" });
  const daemon = relay.relay.registry.byMachineId("flaky");
  if (!daemon) throw new Error("the daemon is not registered");
  relay.log.connection("test_pending_write", "a write that the command's send must wait for");
  relay.relay.serverFrame(command);
  daemon.conn.close(1012, "closing under the command");
  await before.waitForClose();
  expect(before.received.some((f) => f.raw === command)).toBe(false);
  // The dropped send put the command back among the held ones, durably.
  await relay.json("/status");
  expect(relay.stores.tasks.heldCommands("job")).toEqual([command]);

  await using again = await daemonOn(relay, "flaky");
  const got = await again.waitFor((f) => f.raw === command, 3000);
  expect(got.msg).toMatchObject({ type: "sendMessage", taskId: "job" });
  expect(again.received.filter((f) => f.raw === command)).toHaveLength(1);
  expect(relay.stores.tasks.heldCommands("job")).toEqual([]);
  again.heartbeat(["job"]);
  const done = again.complete("job", true);
  expect((await server.waitFor((f) => f.msg?.type === "taskComplete")).raw).toBe(done);
});
