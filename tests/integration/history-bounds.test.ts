/**
 * Tasks that end with long `error` strings, over real sockets: the server
 * receives every taskComplete byte for byte, while history keeps a bounded,
 * marked copy of each error, so one unauthenticated GET /tasks?limit=500
 * stays small however long the errors were (60 tasks that failed with 900 KB
 * errors once made that one answer 108 MB).
 */
import { expect, test } from "bun:test";
import { HISTORY_TEXT_MAX_BYTES, TRUNCATED } from "../../src/core/text-bound.ts";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY } from "../helpers/relay.ts";

const TASKS = 60;
/**
 * Characters of each error: far over the 4 KiB kept, under the protocol's
 * per-field limit, so the frame is still accepted and forwarded. "é" is two
 * UTF-8 bytes, so the cut has to land on a character boundary.
 */
const ERROR_CHARS = 60_000;

interface TaskBody {
  taskId: string;
  error: string | null;
}

const bytes = (s: string) => Buffer.byteLength(s, "utf8");

test("60 tasks failed with 120 KB errors: forwarded whole, kept as 4 KiB marked copies", async () => {
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
  const errorOf = (id: string) => `${id}: ${"é".repeat(ERROR_CHARS)}`;
  const sent = new Map(ids.map((id) => [id, daemon.complete(id, false, errorOf(id))]));

  // Upstream: every frame exactly as the daemon wrote it.
  for (const id of ids) {
    const frame = await server.waitFor(
      (f) => f.msg?.type === "taskComplete" && f.msg.taskId === id,
    );
    expect(frame.raw === sent.get(id)).toBe(true);
  }

  // History: one bounded page, each error cut to 4 KiB and saying how long it was.
  const res = await relay.get("/tasks?limit=500");
  const text = await res.text();
  const page = JSON.parse(text) as { tasks: TaskBody[]; total: number; truncated: boolean };
  expect({
    status: res.status,
    total: page.total,
    rows: page.tasks.length,
    truncated: page.truncated,
    // TASKS × (4 KiB + the other fields) instead of TASKS × 120 KB.
    small: bytes(text) < TASKS * (HISTORY_TEXT_MAX_BYTES + 1024),
    bounded: page.tasks.every((t) => bytes(t.error ?? "") <= HISTORY_TEXT_MAX_BYTES),
    // A prefix of what was sent, on a character boundary, and the size of the whole.
    prefixes: page.tasks.every((t) => {
      const error = t.error ?? "";
      const kept = error.slice(0, error.indexOf("… [truncated"));
      return errorOf(t.taskId).startsWith(kept) && kept.length > 1000;
    }),
    marked: page.tasks.every(
      (t) => Number(TRUNCATED.exec(t.error ?? "")?.[1]) === bytes(errorOf(t.taskId)),
    ),
  }).toEqual({
    status: 200,
    total: TASKS,
    rows: TASKS,
    truncated: false,
    small: true,
    bounded: true,
    prefixes: true,
    marked: true,
  });

  const one = (await relay.json("/tasks/big-0")) as unknown as TaskBody;
  expect(one.error).toBe(page.tasks.find((t) => t.taskId === "big-0")?.error ?? "missing");
});
