/**
 * The compiled executable, started from an empty temporary directory with
 * nothing beside it, runs a task end to end and stops cleanly on SIGTERM.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
import { ensureBinary, freePort, spawnRelayBinary } from "../helpers/binary.ts";

const KEY = "binary-test-key-42";

test("--version and --help work and --help shows no secret", async () => {
  const binary = await ensureBinary();
  const version = Bun.spawnSync([binary, "--version"]);
  expect(version.stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+/);
  const help = Bun.spawnSync([binary, "--help"], {
    env: { MAKIMA_API_KEY: KEY, PATH: process.env.PATH ?? "" },
  });
  const text = help.stdout.toString();
  expect(help.exitCode).toBe(0);
  expect(text).toContain("MAKIMA_RELAY_GRACE_MS");
  expect(text).not.toContain(KEY);
});

test("a bad value stops the start with one line naming the variable, exit 2", async () => {
  const binary = await ensureBinary();
  const run = Bun.spawnSync([binary], {
    env: { MAKIMA_RELAY_PORT: "abc", PATH: process.env.PATH ?? "" },
  });
  expect(run.exitCode).toBe(2);
  const err = run.stderr.toString().trim();
  expect(err.split("\n")).toHaveLength(1);
  expect(err).toContain("MAKIMA_RELAY_PORT");
});

test("the compiled binary relays a task from an empty directory", async () => {
  const binary = await ensureBinary();
  await using server = startSimServer();
  const port = await freePort();
  await using relay = spawnRelayBinary({
    binary,
    env: {
      MAKIMA_SERVER_URL: server.httpUrl,
      MAKIMA_API_KEY: KEY,
      MAKIMA_RELAY_PORT: String(port),
      MAKIMA_RELAY_HOST: "127.0.0.1",
    },
  });
  const started = performance.now();
  await relay.waitForHttp("/health", 10_000);
  const startMs = performance.now() - started;
  await server.waitForConnection(10_000);
  await using daemon = await connectSimDaemon({
    url: `ws://127.0.0.1:${port}`,
    apiKey: KEY,
    machineId: "bin-d",
    maxConcurrentTasks: 2,
  });
  await daemon.authenticated;
  server.spawnTask("bin-1", "compiled");
  await daemon.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === "bin-1");
  daemon.complete("bin-1", true);
  await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "bin-1");
  const task = (await (await fetch(`http://127.0.0.1:${port}/tasks/bin-1`)).json()) as Record<
    string,
    unknown
  >;
  expect(task).toMatchObject({ taskId: "bin-1", status: "completed", taskName: "compiled" });
  expect(existsSync(join(relay.cwd, "makima-relay.db"))).toBe(true);
  expect(relay.logs.some((l) => JSON.stringify(l).includes(KEY))).toBe(false);
  // The effective settings are logged once at start, secrets left out.
  expect(relay.logs.find((l) => l.event === "config")).toMatchObject({
    serverUrl: `${server.url}/ws/daemon`,
    adminToken: false,
    daemonKeys: 0,
  });

  relay.kill("SIGTERM");
  expect(await relay.exited).toBe(0);
  // Start-up time is reported, not asserted: machines are shared and noisy.
  console.log(`binary start to /health: ${startMs.toFixed(0)} ms`);
});
