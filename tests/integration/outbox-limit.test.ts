/**
 * The outbox limit holds for task results too (docs/protocol.md "Durable
 * outbox"), end to end on real sockets and SQLite: during an outage, status
 * changes (which may never be dropped) fill a small outbox past its limit;
 * the relay then stops reading the daemon instead of growing, says so on
 * /ready, /status and /metrics, and once the server is back delivers every
 * frame once, in order, and reads the daemon again. An over-size task result
 * is refused with badMessage at once.
 */
import { expect, test } from "bun:test";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
import { barrier, isSpawn } from "../helpers/frames.ts";
import { startLinked } from "../helpers/linked.ts";
import { metric, quietFor, ready } from "../helpers/probes.ts";
import { startTestRelay, TEST_KEY } from "../helpers/relay.ts";

const OUTBOX_LIMIT = 4096;

interface Status {
  outbox: { frames: number; bytes: number; waiting: number; droppedFrames: number; full: boolean };
}

test("task results past the outbox limit pause the daemon; nothing is dropped; the server gets everything in order", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_OUTBOX_MAX_BYTES: String(OUTBOX_LIMIT) },
  });
  await server.waitForConnection();
  await using d = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "chatty",
    maxConcurrentTasks: 1,
  });
  await d.authenticated;
  server.spawnTask("t1");
  await d.waitFor(isSpawn("t1"));

  await server.stop();
  await relay.logs.waitFor((l) => l.event === "disconnected");
  // 30 status changes of ~230 bytes: 7 KB of frames the outbox may not drop, for a 4 KB limit.
  const pad = "x".repeat(160);
  const status = (i: number) => d.statusChange("t1", `s${i}`, `s${i + 1}:${pad}`);
  const first = Array.from({ length: 30 }, (_, i) => status(i));
  await barrier(d);
  await relay.logs.waitFor((l) => l.event === "outbox_full");

  const full = await relay.json<Status>("/status");
  expect({
    ready: await ready(relay),
    outbox: full.outbox,
    metric: await metric(relay, "makima_relay_outbox_full"),
  }).toEqual({
    ready: { status: 503, ready: false, reasons: expect.arrayContaining(["outbox full"]) },
    outbox: {
      frames: 30,
      bytes: expect.any(Number),
      waiting: 30,
      droppedFrames: 0,
      full: true,
    },
    metric: 1,
  });
  expect(full.outbox.bytes).toBeGreaterThan(OUTBOX_LIMIT);

  // The daemon is no longer read: more frames wait in TCP, the outbox does not grow.
  const later = Array.from({ length: 20 }, (_, i) => status(30 + i));
  const answered = barrier(d);
  await quietFor(300);
  expect(relay.outbox.stats()).toMatchObject({ frames: 30, waiting: 30 });
  expect(d.closed).toBeUndefined();

  server.restart();
  await server.waitForConnection();
  await answered;
  await relay.logs.waitFor((l) => l.event === "outbox_full_cleared");
  await server.waitFor((f) => f.raw === later.at(-1));
  const got = server.received.filter((f) => f.msg?.type === "taskStatusChange").map((f) => f.raw);
  expect(got).toEqual([...first, ...later]);
  expect(await ready(relay)).toEqual({ status: 200, ready: true, reasons: [] });
  expect((await relay.json<Status>("/status")).outbox).toMatchObject({
    full: false,
    droppedFrames: 0,
  });
  expect(await metric(relay, "makima_relay_outbox_full")).toBe(0);
}, 15_000);

test("an over-size error or status is refused with badMessage naming the field; the task is not ended", async () => {
  await using stage = await startLinked({ machineId: "verbose", maxConcurrentTasks: 1 });
  const { server, relay, d } = stage;
  server.spawnTask("t1");
  await d.waitFor(isSpawn("t1"));
  d.complete("t1", false, "e".repeat(70_000));
  const refused = await d.waitFor((f) => f.msg?.type === "error");
  expect(refused.msg).toMatchObject({
    code: "badMessage",
    message: expect.stringContaining(
      'invalid field "error": 70000 characters, over the limit of 65536',
    ),
  });
  d.statusChange("t1", "running", "r".repeat(300));
  const second = await d.waitFor((f) => f.msg?.type === "error" && f.seq !== refused.seq);
  expect(String(second.msg?.message)).toContain('invalid field "newStatus"');
  expect(await relay.json("/tasks/t1")).toMatchObject({ status: "dispatched" });
  const done = d.complete("t1", false, "exit code 2");
  await server.waitFor((f) => f.raw === done);
  expect(server.framesOfType("taskComplete").map((f) => f.raw)).toEqual([done]);
  expect(server.framesOfType("taskStatusChange")).toEqual([]);
});
