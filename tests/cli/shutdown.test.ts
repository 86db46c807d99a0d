/**
 * Graceful shutdown of the compiled binary: SIGTERM while a daemon streams
 * taskOutput through the relay. The relay must close the daemon with 1001 and
 * the upstream with 1000, exit 0 within 5 s, and, once restarted on the same
 * directory, have delivered to the server every frame it accepted, in order,
 * once. A second signal during the stop exits at once.
 */
import { expect, test } from "bun:test";
import { connectSimDaemon, type SimDaemon, startSimServer } from "../../src/sim/index.ts";
import { ensureBinary, freePort, spawnRelayBinary } from "../helpers/binary.ts";
import { binaryEnv } from "../helpers/frames.ts";

const KEY = "shutdown-test-key-31";

/**
 * Streams taskOutput for `taskId`, each frame followed by a barrier: a frame
 * about a task the daemon does not hold, which the relay answers (notYourTask)
 * and never forwards. Frames are handled in order, so the last barrier answered
 * proves that every output frame before it was accepted.
 */
function stream(daemon: SimDaemon, taskId: string) {
  const sent: string[] = [];
  const done = (async () => {
    for (let i = 0; daemon.socket.readyState === WebSocket.OPEN; i++) {
      sent.push(daemon.taskOutput(taskId, `line ${i}`));
      daemon.taskOutput(`barrier-${i}`, "sync");
      // Yield now and then, so replies and the close are seen while streaming.
      if (i % 20 === 19) await Bun.sleep(1);
    }
  })();
  const acceptedAtLeast = (): number => {
    let last = -1;
    for (const f of daemon.received) {
      const m = /barrier-(\d+)/.exec(f.msg?.code === "notYourTask" ? String(f.msg.message) : "");
      if (m) last = Math.max(last, Number(m[1]));
    }
    return last + 1;
  };
  return { sent, done, acceptedAtLeast };
}

test("SIGTERM during a live stream: exit 0 within 5 s, and nothing accepted is lost", async () => {
  const binary = await ensureBinary();
  await using server = startSimServer();
  const port = await freePort();
  // The stream is as fast as the socket allows; the rate limit is not under test here.
  const env = binaryEnv(server.url, KEY, port, {
    MAKIMA_RELAY_DAEMON_RATE: "1000000",
    MAKIMA_RELAY_DAEMON_BURST: "1000000",
    MAKIMA_RELAY_DAEMON_BYTE_RATE: String(1024 * 1024 * 1024),
  });
  const first = spawnRelayBinary({ binary, env });
  let second: ReturnType<typeof spawnRelayBinary> | undefined;
  try {
    await first.waitForHttp("/health", 10_000);
    const upstream = await server.waitForConnection(10_000);
    const daemon = await connectSimDaemon({
      url: `ws://127.0.0.1:${port}`,
      apiKey: KEY,
      machineId: "streamer",
      maxConcurrentTasks: 2,
    });
    await daemon.authenticated;
    server.spawnTask("live-1");
    await daemon.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === "live-1");

    const live = stream(daemon, "live-1");
    // The stream is flowing end to end before the signal.
    await server.waitFor((f) => f.msg?.taskId === "live-1" && f.msg.output === "line 200", 10_000);
    const signalled = performance.now();
    first.kill("SIGTERM");
    const code = await first.exited;
    const stopMs = performance.now() - signalled;
    await live.done;
    const accepted = live.acceptedAtLeast();

    expect({
      code,
      withinBudget: stopMs < 5000,
      daemonClose: (await daemon.waitForClose()).code,
      upstreamClose: (await server.waitForClose((c) => c.connId === upstream.connId)).code,
    }).toEqual({ code: 0, withinBudget: true, daemonClose: 1001, upstreamClose: 1000 });

    // Restart on the same directory (database, outbox, machineId) and let it drain.
    second = spawnRelayBinary({ binary, env, cwd: first.cwd });
    await second.waitForHttp("/health", 10_000);
    const back = await server.waitForConnection(10_000, (c) => c.connId !== upstream.connId);
    expect(back.machineId).toBe(upstream.machineId);
    const again = await connectSimDaemon({
      url: `ws://127.0.0.1:${port}`,
      apiKey: KEY,
      machineId: "streamer",
      maxConcurrentTasks: 2,
    });
    await again.authenticated;
    again.heartbeat(["live-1"]);
    const done = again.complete("live-1", true);
    // taskComplete goes after everything queued before it, so once it is in, all is in.
    await server.waitFor((f) => f.raw === done, 10_000);
    await again.close();

    const got = server.received
      .filter((f) => f.msg?.taskId === "live-1" && f.msg?.type === "taskOutput")
      .map((f) => f.raw);
    // In order, each once, no gap: a prefix of what was sent that covers all that was accepted.
    expect(got).toEqual(live.sent.slice(0, got.length));
    expect(got.length).toBeGreaterThanOrEqual(accepted);
    console.log(
      `stop took ${stopMs.toFixed(0)} ms; sent ${live.sent.length}, accepted >= ${accepted}, delivered ${got.length}`,
    );
  } finally {
    await second?.[Symbol.asyncDispose]();
    await first[Symbol.asyncDispose]();
  }
}, 60_000);

test("SIGTERM then SIGINT: the process is gone at once, whichever signal wins", async () => {
  const binary = await ensureBinary();
  const port = await freePort();
  await using relay = spawnRelayBinary({
    binary,
    env: { MAKIMA_RELAY_PORT: String(port), MAKIMA_RELAY_HOST: "127.0.0.1" },
  });
  await relay.waitForHttp("/health", 10_000);
  const signalled = performance.now();
  relay.kill("SIGTERM");
  relay.kill("SIGINT");
  // The clean stop is quick, so either it won the race (0) or the second signal cut it short (130).
  expect([0, 130]).toContain(await relay.exited);
  expect(performance.now() - signalled).toBeLessThan(2000);
}, 30_000);
