import { describe, expect, test } from "bun:test";
import { connectSimDaemon, daemonUrl, Recorder, startSimServer } from "../../src/sim/index.ts";

const KEY = "sim-key";

describe("sim server and daemon, direct mode", () => {
  test("a spawned task arrives byte-identical and runs to completion", async () => {
    await using server = startSimServer({ apiKeys: [KEY] });
    await using daemon = await connectSimDaemon({
      url: server.url,
      apiKey: KEY,
      machineId: "m-1",
      maxConcurrentTasks: 2,
      behaviour: { runMs: () => 30, outputLines: 3, failRate: 0 },
    });
    const daemonId = await daemon.authenticated;
    const conn = await server.waitForConnection();
    expect(conn).toMatchObject({
      daemonId,
      machineId: "m-1",
      maxConcurrentTasks: 2,
      role: "daemon",
    });

    // Unknown fields and odd spacing must survive: the sim compares raw text.
    const sent = server.spawnTask("t-1", "first", { repo: "x/y", nested: { n: 1 } });
    const got = await daemon.waitFor((f) => f.msg?.type === "spawnTask");
    expect(got.raw).toBe(sent);

    const done = await server.waitFor((f) => f.msg?.type === "taskComplete");
    const outputs = server.framesOfType("taskOutput").map((f) => f.msg.output);
    expect({ done: done.msg, outputs, active: [...daemon.activeTasks] }).toEqual({
      done: { type: "taskComplete", taskId: "t-1", success: true },
      outputs: ["line 1/3 of t-1", "line 2/3 of t-1", "line 3/3 of t-1"],
      active: [],
    });
    expect(server.received[0]?.msg).toMatchObject({
      type: "authenticate",
      apiKey: KEY,
      machineId: "m-1",
    });
  });

  test("the server records raw text, including frames that are not JSON", async () => {
    await using server = startSimServer();
    await using daemon = await connectSimDaemon({ url: server.httpUrl, apiKey: "any" });
    await daemon.authenticated;
    const raw = '{ "type" : "custom",  "big": 12345678901234567890 }';
    daemon.sendRaw(raw);
    daemon.sendRaw("not json");
    daemon.sendRaw(new TextEncoder().encode('{"type":"bin"}'));
    const custom = await server.waitFor((f) => f.raw === raw);
    const junk = await server.waitFor((f) => f.raw === "not json");
    const bin = await server.waitFor((f) => f.msg?.type === "bin");
    expect({ custom: custom.msg?.type, junk: junk.msg, binary: junk.binary }).toEqual({
      custom: "custom",
      junk: undefined,
      binary: false,
    });
    expect(bin.binary).toBe(true);
  });

  test("a wrong key gets unauthorized and close 4401", async () => {
    await using server = startSimServer({ apiKeys: [KEY] });
    const daemon = await connectSimDaemon({ url: server.url, apiKey: "wrong" });
    const closed = await daemon.waitForClose();
    expect(closed.code).toBe(4401);
    expect(daemon.framesOfType("error")[0]?.msg.code).toBe("unauthorized");
    await expect(daemon.authenticated).rejects.toThrow(/before authenticated/);
    expect(server.connections).toHaveLength(0);
  });

  test("a first frame that is not authenticate gets badMessage and 4401", async () => {
    await using server = startSimServer();
    const daemon = await connectSimDaemon({
      url: server.url,
      apiKey: KEY,
      autoAuthenticate: false,
    });
    daemon.heartbeat();
    expect((await daemon.waitForClose()).code).toBe(4401);
    expect(daemon.framesOfType("error")[0]?.msg.code).toBe("badMessage");
  });

  test("stop() closes clients with 1001 and restart() listens on the same port", async () => {
    await using server = startSimServer();
    const port = server.port;
    const first = await connectSimDaemon({ url: server.url, apiKey: KEY });
    await first.authenticated;
    await server.stop();
    expect((await first.waitForClose()).code).toBe(1001);
    await expect(
      connectSimDaemon({ url: server.url, apiKey: KEY, connectTimeoutMs: 2000 }),
    ).rejects.toThrow(/failed/);

    server.restart();
    expect(server.port).toBe(port);
    await using second = await connectSimDaemon({ url: server.url, apiKey: KEY });
    const conn = await server.waitForConnection();
    expect(conn.daemonId).toBe(await second.authenticated);
  });

  test("interrupt ends a running task, pause/resume only delay it", async () => {
    await using server = startSimServer();
    await using daemon = await connectSimDaemon({
      url: server.url,
      apiKey: KEY,
      behaviour: { runMs: () => 60_000, outputLines: 1, failRate: 0 },
    });
    await daemon.authenticated;
    server.spawnTask("long");
    server.pauseTask("long");
    server.resumeTask("long");
    server.interruptTask("long");
    const done = await server.waitFor((f) => f.msg?.type === "taskComplete");
    expect(done.msg).toEqual({
      type: "taskComplete",
      taskId: "long",
      success: false,
      error: "interrupted",
    });
    expect(server.framesOfType("taskOutput")).toHaveLength(0);
  });

  test("failRate uses the injected rng; heartbeats list the active tasks", async () => {
    await using server = startSimServer();
    const durations = [0];
    await using daemon = await connectSimDaemon({
      url: server.url,
      apiKey: KEY,
      heartbeatMs: 10,
      behaviour: {
        runMs: () => durations.shift() ?? 60_000,
        outputLines: 0,
        failRate: 0.5,
        rng: () => 0.1,
      },
    });
    await daemon.authenticated;
    server.spawnTask("quick");
    const failed = await server.waitFor((f) => f.msg?.type === "taskComplete");
    expect(failed.msg).toMatchObject({
      taskId: "quick",
      success: false,
      error: "simulated failure",
    });
    server.spawnTask("held");
    server.spawnTask("held-too");
    const beat = await server.waitFor(
      (f) => f.msg?.type === "heartbeat" && f.msg.activeTasks.length === 2,
    );
    expect(beat.msg.activeTasks).toEqual(["held", "held-too"]);
  });

  test("startSpawning spawns task-<n> at a steady rate on the newest connection", async () => {
    await using server = startSimServer();
    await using daemon = await connectSimDaemon({ url: server.url, apiKey: KEY });
    await daemon.authenticated;
    const spawned: string[] = [];
    server.startSpawning({ ratePerSec: 500, payloadBytes: 64, onSpawn: (id) => spawned.push(id) });
    await daemon.waitFor((f) => f.msg?.taskId === "task-5");
    server.stopSpawning();
    const first = daemon.framesOfType("spawnTask")[0]?.msg;
    expect({ payload: first?.payload.length, ids: spawned.slice(0, 5) }).toEqual({
      payload: 64,
      ids: ["task-1", "task-2", "task-3", "task-4", "task-5"],
    });
  });
  test("a paused task sends nothing until resumed", async () => {
    await using server = startSimServer();
    await using daemon = await connectSimDaemon({
      url: server.url,
      apiKey: KEY,
      heartbeatMs: 5,
      behaviour: { runMs: () => 40, outputLines: 1, failRate: 0 },
    });
    await daemon.authenticated;
    server.spawnTask("p");
    const paused = server.pauseTask("p");
    await daemon.waitFor((f) => f.raw === paused);
    // The daemon's own heartbeats are the clock: twenty of them span several
    // 20 ms steps, so output would have shown by now if pause were ignored.
    const beats = server.framesOfType("heartbeat").length;
    await server.waitFor(() => server.framesOfType("heartbeat").length >= beats + 20);
    expect(server.framesOfType("taskOutput")).toHaveLength(0);
    server.resumeTask("p");
    await server.waitFor((f) => f.msg?.type === "taskComplete");
    expect(server.framesOfType("taskOutput").map((f) => f.msg.output)).toEqual(["line 1/1 of p"]);
  });
});

describe("Recorder", () => {
  test("waitFor matches past and future items and times out descriptively", async () => {
    const log = new Recorder<number>("numbers");
    log.push(1);
    expect(await log.waitFor((n) => n === 1, 100)).toBe(1);
    const later = log.waitForNext((n) => n > 0, 1000);
    log.push(2);
    expect(await later).toBe(2);
    await expect(log.waitFor((n) => n === 3, 20)).rejects.toThrow(
      /timed out after 20 ms waiting in numbers/,
    );
  });
});

test("daemonUrl follows the contract's URL rule", () => {
  expect(
    ["http://h:1", "https://h/", "ws://h:2/ws/daemon", "wss://h/base/"].map(daemonUrl),
  ).toEqual([
    "ws://h:1/ws/daemon",
    "wss://h/ws/daemon",
    "ws://h:2/ws/daemon",
    "wss://h/base/ws/daemon",
  ]);
});
