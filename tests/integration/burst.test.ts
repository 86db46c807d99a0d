/**
 * Rate limit: slow down, never drop (docs/protocol.md). A daemon that prints
 * a long build log at once is read more slowly, never cut off: every frame
 * reaches the server once and in order, the task completes, its slot frees,
 * other daemons are not held up behind it, a throttled daemon is not closed
 * for silence, and child relays are not throttled at all.
 */
import { expect, test } from "bun:test";
import {
  connectSimDaemon,
  type SimDaemon,
  type SimServer,
  startSimServer,
} from "../../src/sim/index.ts";
import { barrier, isSpawn } from "../helpers/frames.ts";
import { metric } from "../helpers/probes.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";

const FLOOD = 5000;

async function daemonOn(
  relay: TestRelay,
  machineId: string,
  extra: Partial<Parameters<typeof connectSimDaemon>[0]> = {},
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

/**
 * The task's outputs numbered 0..n-1, sent back to back in one turn. Each line
 * is padded to `lineBytes` so that the flood is far larger than what the relay
 * reads from a socket at once (Bun reads up to 512 KB): frames already read
 * are always handled, so only a flood that spans many reads is slowed.
 */
function flood(d: SimDaemon, taskId: string, n = FLOOD, lineBytes = 1000): string[] {
  const pad = "x".repeat(lineBytes);
  return d.sendAll(
    Array.from({ length: n }, (_, i) => ({
      type: "taskOutput",
      taskId,
      output: `line ${i} ${pad}`,
    })),
  );
}

/** The raw frames the server got about `taskId`, the spawn excepted. */
function upstreamFramesOf(server: SimServer, taskId: string): string[] {
  return server.received
    .filter((f) => f.msg?.taskId === taskId && f.msg?.type !== "spawnTask")
    .map((f) => f.raw);
}

test("5,000 outputs at once all arrive once, in order, then taskComplete; the slot frees; one throttle episode", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  await server.waitForConnection();
  await using d = await daemonOn(relay, "printer");
  server.spawnTask("build");
  await d.waitFor(isSpawn("build"));

  const sent = [...flood(d, "build"), d.complete("build", true)];
  await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "build", 9000);

  // Exactly once and in order: the whole sequence, byte for byte.
  expect(upstreamFramesOf(server, "build")).toEqual(sent);
  expect(d.received.filter((f) => f.msg?.type === "error")).toEqual([]);
  expect(d.closed).toBeUndefined();
  expect(await relay.json("/tasks/build")).toMatchObject({ status: "completed" });
  const daemons = await relay.json<{ daemons: { machineId: string; activeTasks: number }[] }>(
    "/daemons",
  );
  expect(daemons.daemons).toEqual([
    expect.objectContaining({ machineId: "printer", activeTasks: 0 }),
  ]);
  server.spawnTask("next");
  await d.waitFor(isSpawn("next"));
  // A frame read after the flood: the relay reads this daemon at full speed again.
  await barrier(d);

  const throttled = relay.logs.items.filter((l) => l.event === "daemon_throttled");
  expect(throttled).toHaveLength(1);
  expect(String(throttled[0]?.details)).toContain("printer");
  expect(await metric(relay, "makima_relay_daemon_throttle_episodes_total")).toBeGreaterThanOrEqual(
    1,
  );
  // The flood is over and paid for: nobody is being read slowly any more.
  expect(await metric(relay, "makima_relay_daemons_throttled")).toBe(0);
}, 15_000);

test("a flooding daemon does not hold up another daemon's frames", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  await server.waitForConnection();
  await using flooder = await daemonOn(relay, "flooder");
  await using quiet = await daemonOn(relay, "quiet");
  server.spawnTask("loud");
  server.spawnTask("short");
  await flooder.waitFor(isSpawn("loud"));
  await quiet.waitFor(isSpawn("short"));

  const sent = flood(flooder, "loud");
  // Wait until the relay is actually reading the flooder slowly, then speak on the other socket.
  await relay.logs.waitFor((l) => l.event === "daemon_throttled");
  const done = quiet.complete("short", true);
  const quietArrived = await server.waitFor((f) => f.raw === done, 2000);
  const lastLoud = await server.waitFor((f) => f.raw === sent.at(-1), 9000);

  expect(quietArrived.seq).toBeLessThan(lastLoud.seq);
  // "Long before": the flood still had most of a second of frames to go.
  expect(lastLoud.at - quietArrived.at).toBeGreaterThan(500);
  expect(upstreamFramesOf(server, "loud")).toEqual(sent);
}, 15_000);

test("a heartbeat stuck behind a throttled socket does not get the daemon closed for silence (4408)", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_DAEMON_TIMEOUT_MS: "300",
      MAKIMA_RELAY_DAEMON_RATE: "50",
    },
  });
  await server.waitForConnection();
  // Heartbeats every 100 ms queue up behind the flood in the same socket.
  await using d = await daemonOn(relay, "slowread", { heartbeatMs: 100 });
  server.spawnTask("log");
  await d.waitFor(isSpawn("log"));

  // 100 frames at once (the burst is twice the rate), the other 150 at 50/s: the relay
  // cannot read this socket again for about 3 s, ten liveness timeouts, while heartbeats
  // every 100 ms wait behind the flood.
  const started = performance.now();
  const sent = [...flood(d, "log", 250, 200), d.complete("log", true)];
  await server.waitFor((f) => f.raw === sent.at(-1), 9000);
  // Sent after the relay read the whole flood: read only once the debt is paid.
  await barrier(d);
  const unreadForMs = performance.now() - started;

  expect(unreadForMs).toBeGreaterThan(5 * 300);
  expect(upstreamFramesOf(server, "log")).toEqual(sent);
  expect(d.closed).toBeUndefined();
  expect(relay.logs.items.filter((l) => l.event === "daemon_silent")).toEqual([]);
  expect((await relay.json<{ connectedDaemons: number }>("/status")).connectedDaemons).toBe(1);
}, 15_000);

test('a "role":"relay" connection sending the same flood is never throttled', async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  await server.waitForConnection();
  await using child = await daemonOn(relay, "child-relay", { authExtra: { role: "relay" } });
  server.spawnTask("via-child");
  await child.waitFor(isSpawn("via-child"));

  const sent = [...flood(child, "via-child"), child.complete("via-child", true)];
  await server.waitFor((f) => f.raw === sent.at(-1), 9000);

  expect(upstreamFramesOf(server, "via-child")).toEqual(sent);
  expect(relay.logs.items.filter((l) => l.event === "daemon_throttled")).toEqual([]);
  expect(await metric(relay, "makima_relay_daemon_throttle_episodes_total")).toBe(0);
}, 15_000);

test("a daemon sending large frames is slowed by its byte budget; another daemon's frame overtakes its flood", async () => {
  const BYTE_RATE = 256 * 1024;
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_DAEMON_BYTE_RATE: String(BYTE_RATE) },
  });
  await server.waitForConnection();
  await using flooder = await daemonOn(relay, "big-frames");
  await using quiet = await daemonOn(relay, "quiet");
  server.spawnTask("heavy");
  server.spawnTask("light");
  await flooder.waitFor(isSpawn("heavy"));
  await quiet.waitFor(isSpawn("light"));

  // 40 frames of 32 KB: 1.25 MiB, far under the frame budget (1,000 frames/s) but 2.5 times
  // the byte burst (twice the rate): about three seconds of debt.
  const sent = flood(flooder, "heavy", 40, 32 * 1024);
  const throttled = await relay.logs.waitFor((l) => l.event === "daemon_throttled");
  expect(String(throttled.details)).toContain(`over ${BYTE_RATE} bytes/s`);
  const done = quiet.complete("light", true);
  const quietArrived = await server.waitFor((f) => f.raw === done, 2000);
  const lastHeavy = await server.waitFor((f) => f.raw === sent.at(-1), 9000);

  expect(quietArrived.seq).toBeLessThan(lastHeavy.seq);
  // Slowed, not dropped: every frame once, in order, no error frame, still connected.
  expect(upstreamFramesOf(server, "heavy")).toEqual(sent);
  expect(flooder.received.filter((f) => f.msg?.type === "error")).toEqual([]);
  expect(flooder.closed).toBeUndefined();
}, 15_000);
