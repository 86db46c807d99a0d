/**
 * Storage failures (docs/protocol.md): a real full disk. The relay's database
 * sits on a small tmpfs that fills while upstream is down and a daemon streams
 * output. The relay must say so (/ready, /status, /metrics, one log line),
 * accept nothing it cannot keep, and once the operator frees space and the
 * server is back, carry on by itself: every frame arrives once, in order,
 * without a restart.
 */
import { expect, test } from "bun:test";
import { readdirSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  connectSimDaemon,
  type SimDaemon,
  type SimServer,
  startSimServer,
} from "../../src/sim/index.ts";
import { isSpawn } from "../helpers/frames.ts";
import { metric, ready } from "../helpers/probes.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";
import { mountTmpfs, type Tmpfs } from "../helpers/tmpfs.ts";

const MB = 1024 * 1024;
const FRAMES = 400;
const LINE_BYTES = 16 * 1024;
/** What the database may still grow into once the filler is written. */
const LEFT_BYTES = 1.5 * MB;
/**
 * The filesystem once the operator has freed space. SQLite in WAL mode needs
 * room for the data and for its WAL (up to ~4 MB between checkpoints, plus the
 * batch being committed), so freeing "just the size of the stream" is not
 * enough: see README "What it cannot promise".
 */
const ROOMY = 32 * MB;

interface StorageView {
  ok: boolean;
  code: string | null;
  error: string | null;
  pendingWrites: number;
}

interface Stage {
  fs: Tmpfs;
  server: SimServer;
  relay: TestRelay;
  d: SimDaemon;
  filler: string;
  /** Stops the relay and unmounts, whatever the test left behind; errors are returned, not thrown. */
  teardown(): Promise<unknown[]>;
}

/**
 * A relay whose database is on a `fsBytes` tmpfs, with a daemon holding task
 * "big-log", the filesystem filled up to LEFT_BYTES, and the server down.
 */
async function stage(fsBytes: number): Promise<Stage> {
  const fs = mountTmpfs(fsBytes, "makima-relay-full-");
  const server = startSimServer();
  const relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_DB: join(fs.dir, "relay.db"),
      // The outbox's own size limit drops output on purpose (counted); not what is tested here.
      MAKIMA_RELAY_OUTBOX_MAX_BYTES: String(64 * MB),
    },
  });
  const teardown = async (): Promise<unknown[]> => {
    const errors: unknown[] = [];
    const steps: Array<() => PromiseLike<unknown>> = [
      () => d.close(1000, "test over", 1000),
      () => relay[Symbol.asyncDispose](),
      () => server.stop(),
      () => fs[Symbol.asyncDispose](),
    ];
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    return errors;
  };
  await server.waitForConnection();
  const d = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "streamer",
    maxConcurrentTasks: 1,
  });
  await d.authenticated;
  server.spawnTask("big-log");
  await d.waitFor(isSpawn("big-log"));
  const filler = fs.fill("filler", Math.max(0, fs.free() - LEFT_BYTES));
  await server.stop();
  await relay.logs.waitFor((l) => l.event === "disconnected");
  return { fs, server, relay, d, filler, teardown };
}

function output(i: number): object {
  return { type: "taskOutput", taskId: "big-log", output: `${i} ${"x".repeat(LINE_BYTES)}` };
}

/**
 * Runs `body`, then tears down. Teardown errors are not the body's verdict:
 * stopping a relay on a nearly full disk is the last test's own subject.
 */
async function withStage(fsBytes: number, body: (s: Stage) => Promise<void>): Promise<void> {
  const s = await stage(fsBytes);
  try {
    await body(s);
  } finally {
    await s.teardown();
  }
}

/** Everything the server got about the task, the spawn excepted, as sent. */
function upstreamFrames(server: SimServer): string[] {
  return server.received
    .filter((f) => f.msg?.taskId === "big-log" && f.msg?.type !== "spawnTask")
    .map((f) => f.raw);
}

async function expectStorageFailing(relay: TestRelay): Promise<void> {
  const failing = await relay.logs.waitFor((l) => l.event === "storage_failing", 8000);
  expect(failing).toMatchObject({ code: "SQLITE_FULL" });
  expect(String(failing.error)).toMatch(/full/i);
  const notReady = await ready(relay);
  expect({ status: notReady.status, storage: notReady.reasons.includes("storage") }).toEqual({
    status: 503,
    storage: true,
  });
  const status = await relay.json<{ storage: StorageView }>("/status");
  expect(status.storage).toMatchObject({ ok: false, code: "SQLITE_FULL" });
  expect(status.storage.pendingWrites).toBeGreaterThan(0);
  expect(await metric(relay, "makima_relay_storage_ok")).toBe(0);
  expect(await metric(relay, "makima_relay_storage_failed_commits_total")).toBeGreaterThan(0);
}

async function expectAllDelivered(s: Stage, sent: string[], timeoutMs: number): Promise<void> {
  const { relay, server } = s;
  await relay.logs.waitFor((l) => l.event === "storage_recovered", timeoutMs);
  await server.waitFor(
    (f) => f.msg?.type === "taskComplete" && f.msg.taskId === "big-log",
    timeoutMs,
  );
  const got = upstreamFrames(server);
  expect(got.length).toBe(sent.length);
  expect(got).toEqual(sent);
  expect(s.d.closed).toBeUndefined();
  expect(relay.logs.items.filter((l) => l.event === "outbox_drop")).toEqual([]);
  expect(await ready(relay)).toEqual({ status: 200, ready: true, reasons: [] });
  const healed = await relay.json<{ activeTasks: number; storage: StorageView }>("/status");
  const dispatched = await relay.json<{ total: number }>("/tasks?status=dispatched");
  const pending = await relay.json<{ total: number }>("/tasks?status=pending");
  expect({
    storage: healed.storage.ok,
    activeTasks: healed.activeTasks,
    fromTasks: dispatched.total + pending.total,
    task: (await relay.json("/tasks/big-log")).status,
  }).toEqual({ storage: true, activeTasks: 0, fromTasks: 0, task: "completed" });
  expect(await metric(relay, "makima_relay_storage_ok")).toBe(1);
}

test("a full disk pauses the relay and says so; once space is freed every frame arrives once, in order", async () => {
  await withStage(ROOMY, async (s) => {
    const { d, relay } = s;
    // A daemon streaming a build log: a few frames per write, as fast as TCP lets it.
    const sent: string[] = [];
    for (let i = 0; i < FRAMES; i += 5) {
      for (let j = i; j < i + 5; j++) sent.push(d.send(output(j)));
      await Bun.sleep(2);
    }
    sent.push(d.complete("big-log", true));

    // 6.4 MB of output cannot fit in 1.5 MB: a commit fails with SQLITE_FULL.
    await expectStorageFailing(relay);
    // Nothing it cannot keep: a new daemon is refused at the upgrade meanwhile.
    const refused = await fetch(relay.daemonUrl.replace("ws://", "http://"), {
      headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-version": "13" },
    });
    expect(refused.status).toBe(503);
    expect(relay.logs.items.filter((l) => l.event === "storage_failing")).toHaveLength(1);

    // The operator frees space and the server comes back; the relay is not restarted.
    rmSync(s.filler);
    s.server.restart();
    await expectAllDelivered(s, sent, 8000);
  });
}, 20_000);

test("a burst read before the disk filled is delivered once space is freed and the server is back", async () => {
  await withStage(ROOMY, async (s) => {
    const sent = s.d.sendAll(Array.from({ length: FRAMES }, (_, i) => output(i)));
    sent.push(s.d.complete("big-log", true));
    await expectStorageFailing(s.relay);
    rmSync(s.filler);
    s.server.restart();
    await expectAllDelivered(s, sent, 8000);
  });
}, 25_000);

test("stopping while commits fail still closes the database file", async () => {
  await withStage(3 * MB, async (s) => {
    s.d.sendAll(Array.from({ length: FRAMES }, (_, i) => output(i)));
    await s.relay.logs.waitFor((l) => l.event === "storage_failing", 8000);
    await s.d.close(1000, "test over", 1000).catch(() => {});
    const stopped = await s.relay.stop().then(
      () => "stopped",
      (err: unknown) => `stop() threw: ${err}`,
    );
    expect({
      stopped,
      unsaved: s.relay.logs.items.some((l) => l.event === "storage_unsaved_at_stop"),
      openFiles: openFilesUnder(s.fs.dir),
    }).toEqual({ stopped: "stopped", unsaved: true, openFiles: [] });
  });
}, 20_000);

/** Files under `dir` this process still holds open. */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) open.push(target.slice(dir.length + 1));
    } catch {
      // Closed between the listing and the readlink.
    }
  }
  return [...new Set(open)].sort();
}
