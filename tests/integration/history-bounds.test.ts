/**
 * Tasks that end with huge `error` strings (and report a huge status) over
 * real sockets: the server receives every frame byte for byte, while history
 * keeps a bounded, marked copy, so one unauthenticated GET /tasks?limit=500
 * stays small. (Before the bound, 60 such tasks made that one answer 108 MB.)
 */
import { expect, test } from "bun:test";
import { HISTORY_TEXT_MAX_BYTES, TRUNCATED } from "../../src/core/text-bound.ts";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY } from "../helpers/relay.ts";

/** Scaled down from the 60 of the report (to keep the test quick); the bound is per task. */
const TASKS = 24;
const HUGE = 900_000;

interface TaskBody {
  taskId: string;
  error: string | null;
  lastReportedStatus: string | null;
}

const bytes = (s: string) => Buffer.byteLength(s, "utf8");

test("tasks failed with 900 KB errors: forwarded whole, kept as 4 KiB marked copies", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  await server.waitForConnection();
  await using daemon = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "verbose",
    maxConcurrentTasks: TASKS,
  });
  await daemon.authenticated;

  const ids = Array.from({ length: TASKS }, (_, i) => `big-${i}`);
  for (const id of ids) server.spawnTask(id);
  for (const id of ids) {
    await daemon.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === id);
  }
  const status = daemon.statusChange("big-0", "running", `phase ${"s".repeat(HUGE)}`);
  const sent = new Map(
    ids.map((id) => [id, daemon.complete(id, false, `${id}: ${"e".repeat(HUGE)}`)]),
  );

  // Upstream: every frame exactly as the daemon wrote it.
  const statusAtServer = await server.waitFor((f) => f.msg?.type === "taskStatusChange");
  expect(statusAtServer.raw === status).toBe(true);
  for (const id of ids) {
    const frame = await server.waitFor(
      (f) => f.msg?.type === "taskComplete" && f.msg.taskId === id,
    );
    expect(frame.raw === sent.get(id)).toBe(true);
  }

  // History: one bounded page, each text cut to 4 KiB and saying how long it was.
  const res = await relay.get("/tasks?limit=500");
  const text = await res.text();
  const page = JSON.parse(text) as { tasks: TaskBody[]; total: number };
  const errors = page.tasks.map((t) => t.error ?? "");
  expect({
    status: res.status,
    total: page.total,
    rows: page.tasks.length,
    // TASKS × (4 KiB + the other fields) instead of TASKS × 900 KB.
    small: bytes(text) < TASKS * (HISTORY_TEXT_MAX_BYTES + 1024),
    bounded: errors.every((e) => bytes(e) <= HISTORY_TEXT_MAX_BYTES),
    // The mark gives the size of the original: the task id, ": " and the 900 KB.
    marked: page.tasks.every(
      (t) => Number(TRUNCATED.exec(t.error ?? "")?.[1]) === bytes(`${t.taskId}: `) + HUGE,
    ),
  }).toEqual({ status: 200, total: TASKS, rows: TASKS, small: true, bounded: true, marked: true });

  const one = (await relay.json("/tasks/big-0")) as unknown as TaskBody;
  const reported = one.lastReportedStatus ?? "";
  expect({
    statusBytes: bytes(reported),
    statusSize: Number(TRUNCATED.exec(reported)?.[1]),
    starts: reported.startsWith("phase sss"),
  }).toEqual({ statusBytes: HISTORY_TEXT_MAX_BYTES, statusSize: HUGE + 6, starts: true });
});
