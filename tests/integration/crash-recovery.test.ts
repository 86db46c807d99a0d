/**
 * kill -9 during an upstream outage: after a restart on the same database,
 * everything the relay had accepted reaches the server, and the relay keeps
 * its machineId and its dispatched tasks, and each task keeps its timeline.
 */
import { expect, test } from "bun:test";
import { connectSimDaemon, type SimDaemon, startSimServer } from "../../src/sim/index.ts";
import { ensureBinary, freePort, type RelayProcess, spawnRelayBinary } from "../helpers/binary.ts";
import { barrier, binaryEnv } from "../helpers/frames.ts";
import { pollUntil } from "../helpers/probes.ts";

const KEY = "crash-test-key-77";

/** kill -9 of `first`, then the same binary on the same directory and database, answering /health. */
async function killAndRestart(
  first: RelayProcess,
  daemon: SimDaemon,
  binary: string,
  env: Record<string, string>,
): Promise<RelayProcess> {
  first.kill("SIGKILL");
  await first.exited;
  await daemon.waitForClose(5000);
  const second = spawnRelayBinary({ binary, env, cwd: first.cwd });
  try {
    await second.waitForHttp("/health", 10_000);
  } catch (err) {
    await second[Symbol.asyncDispose]();
    throw err;
  }
  return second;
}

test("SIGKILL during an outage loses nothing the relay accepted", async () => {
  const binary = await ensureBinary();
  await using server = startSimServer();
  const port = await freePort();
  const env = binaryEnv(server.url, KEY, port, { MAKIMA_RELAY_GRACE_MS: "30000" });
  const first = spawnRelayBinary({ binary, env });
  await first.waitForHttp("/health", 10_000);
  const upstream = await server.waitForConnection(10_000);
  const d = await connectSimDaemon({
    url: `ws://127.0.0.1:${port}`,
    apiKey: KEY,
    machineId: "survivor",
    maxConcurrentTasks: 4,
  });
  await d.authenticated;
  server.spawnTask("k1");
  server.spawnTask("k2");
  await d.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === "k2");

  await server.stop();
  await first.waitForLog((l) => l.event === "disconnected", 5000);
  const accepted: string[] = [];
  for (let i = 0; i < 20; i++) accepted.push(d.taskOutput("k1", `line ${i}`));
  accepted.push(d.complete("k1", true));
  await barrier(d);
  // Accepted means committed: writes are committed at the end of the event-loop turn
  // that made them, so by the time a later request is answered they are on disk.
  const before = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as {
    outbox: { frames: number };
  };
  expect(before.outbox.frames).toBe(accepted.length);

  const second = await killAndRestart(first, d, binary, env);
  try {
    const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as Record<
      string,
      number | string
    >;
    expect(status.machineId).toBe(upstream.machineId);
    expect(status.activeTasks).toBeGreaterThanOrEqual(1);
    expect((status.outbox as unknown as { frames: number }).frames).toBe(accepted.length);

    server.restart();
    const back = await server.waitForConnection(10_000, (c) => c.connId !== upstream.connId);
    expect(back.machineId).toBe(upstream.machineId);
    await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "k1", 10_000);
    const got = server.received
      .filter((f) => f.msg?.taskId === "k1" && f.msg?.type !== "spawnTask")
      .map((f) => f.raw);
    expect(got).toEqual(accepted);

    // k2 waits for its daemon: the same machine reconnecting gets it back and can finish it.
    const again = await connectSimDaemon({
      url: `ws://127.0.0.1:${port}`,
      apiKey: KEY,
      machineId: "survivor",
      maxConcurrentTasks: 4,
    });
    await again.authenticated;
    again.heartbeat(["k2"]);
    const done = again.complete("k2", true);
    expect(
      (
        await server.waitFor(
          (f) => f.msg?.taskId === "k2" && f.msg?.type === "taskComplete",
          10_000,
        )
      ).raw,
    ).toBe(done);
    await again.close();
    second.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  } finally {
    await second[Symbol.asyncDispose]();
    await first[Symbol.asyncDispose]();
  }
});

interface TimelineView {
  status: string;
  events: { kind: string; at: string; machineId: string | null; detail: string | null }[];
}

test("SIGKILL keeps each task's timeline as committed; the restarted relay goes on writing it", async () => {
  const binary = await ensureBinary();
  await using server = startSimServer();
  const port = await freePort();
  const env = binaryEnv(server.url, KEY, port, { MAKIMA_RELAY_GRACE_MS: "30000" });
  const timeline = async (taskId: string): Promise<TimelineView> => {
    const res = await fetch(`http://127.0.0.1:${port}/tasks/${taskId}/events`);
    expect(res.status).toBe(200);
    return (await res.json()) as TimelineView;
  };
  const first = spawnRelayBinary({ binary, env });
  await first.waitForHttp("/health", 10_000);
  await server.waitForConnection(10_000);
  const daemon = () =>
    connectSimDaemon({
      url: `ws://127.0.0.1:${port}`,
      apiKey: KEY,
      machineId: "historian",
      maxConcurrentTasks: 2,
    });
  const d = await daemon();
  await d.authenticated;
  server.spawnTask("t-done");
  server.spawnTask("t-live");
  await d.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === "t-live");
  d.statusChange("t-live", "starting", "running");
  d.complete("t-done", true);
  // The relay forwards a result only once its end is committed.
  await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "t-done", 10_000);
  const live = await pollUntil(
    () => timeline("t-live"),
    (t) => t.events.some((e) => e.kind === "statusReported"),
  );
  const done = await timeline("t-done");
  expect(done.events.at(-1)?.kind).toBe("completed");

  const second = await killAndRestart(first, d, binary, env);
  try {
    expect(await timeline("t-done")).toEqual(done);
    expect((await timeline("t-live")).events).toEqual(live.events);

    const again = await daemon();
    await again.authenticated;
    again.heartbeat(["t-live"]);
    again.complete("t-live", true);
    await server.waitFor(
      (f) => f.msg?.type === "taskComplete" && f.msg.taskId === "t-live",
      10_000,
    );
    const after = await timeline("t-live");
    expect(after.status).toBe("completed");
    expect(after.events.slice(0, live.events.length)).toEqual(live.events);
    expect(after.events.at(-1)?.kind).toBe("completed");
    await again.close();
  } finally {
    await second[Symbol.asyncDispose]();
    await first[Symbol.asyncDispose]();
  }
});
