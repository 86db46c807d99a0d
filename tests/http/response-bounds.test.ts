/**
 * What one answer may carry: a GET /tasks page stops at TASK_PAGE_MAX_BYTES
 * of tasks and says so, paging by `offset + tasks.length` still visits every
 * row once; GET /logs carries details bounded where they are stored.
 */
import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/core/manual-clock.ts";
import { HISTORY_TEXT_MAX_BYTES, LOG_DETAILS_MAX_BYTES } from "../../src/core/text-bound.ts";
import { LOG_LIMIT_MAX } from "../../src/http/logs.ts";
import { TASK_LIMIT_MAX, TASK_PAGE_MAX_BYTES } from "../../src/http/tasks.ts";
import { createLogger } from "../../src/log/logger.ts";
import { openStores } from "../store/helpers.ts";
import { fakeDeps, request, task, testApp } from "./fake-deps.ts";

interface Page {
  tasks: { taskId: string }[];
  total: number;
  limit: number;
  offset: number;
  truncated: boolean;
}

const bytes = (s: string) => Buffer.byteLength(s, "utf8");

/** `n` failed tasks whose stored error is `error` (history already bounded it). */
function appWith(n: number, error: string, taskName?: (i: number) => string) {
  const tasks = Array.from({ length: n }, (_, i) =>
    task({
      taskId: `t${String(i).padStart(3, "0")}`,
      status: "failed",
      error,
      ...(taskName ? { taskName: taskName(i) } : {}),
    }),
  );
  return testApp(fakeDeps({ tasks }).deps);
}

async function getPage(app: ReturnType<typeof appWith>, path: string) {
  const text = await (await app.handle(request(path))).text();
  return { size: bytes(text), page: JSON.parse(text) as Page };
}

describe("GET /tasks is bounded in bytes", () => {
  test.each([
    ["4 KiB errors", "e".repeat(HISTORY_TEXT_MAX_BYTES)],
    // One UTF-8 byte becomes six in JSON (\u0001): the worst escaping there is.
    ["4 KiB of control characters", "\u0001".repeat(HISTORY_TEXT_MAX_BYTES)],
  ])(
    "500 tasks with %s: one page of at most 1 MiB, and paging visits every row once",
    async (_, error) => {
      const app = appWith(TASK_LIMIT_MAX, error);
      const first = await getPage(app, `/tasks?limit=${TASK_LIMIT_MAX}`);
      expect({
        bounded: first.size <= TASK_PAGE_MAX_BYTES + 200,
        truncated: first.page.truncated,
        total: first.page.total,
        limit: first.page.limit,
        some: first.page.tasks.length > 0,
      }).toEqual({ bounded: true, truncated: true, total: TASK_LIMIT_MAX, limit: 500, some: true });

      const seen: string[] = [];
      let offset = 0;
      let last: Page | undefined;
      while (offset < first.page.total) {
        const { size, page } = await getPage(
          app,
          `/tasks?limit=${TASK_LIMIT_MAX}&offset=${offset}`,
        );
        expect(size).toBeLessThanOrEqual(TASK_PAGE_MAX_BYTES + 200);
        seen.push(...page.tasks.map((t) => t.taskId));
        offset += page.tasks.length;
        last = page;
      }
      expect(seen).toEqual(Array.from({ length: 500 }, (_, i) => `t${String(i).padStart(3, "0")}`));
      expect(last?.truncated).toBe(false);
    },
  );

  test("small tasks fill the whole limit: nothing cut, truncated false", async () => {
    const { page } = await getPage(appWith(TASK_LIMIT_MAX, "boom"), "/tasks?limit=500");
    expect([page.tasks.length, page.truncated]).toEqual([500, false]);
  });

  test("a row larger than the budget still comes, alone, so paging moves on", async () => {
    const app = appWith(3, "boom", (i) => (i === 0 ? "n".repeat(TASK_PAGE_MAX_BYTES) : "small"));
    const first = await getPage(app, "/tasks?limit=3");
    const rest = await getPage(app, "/tasks?limit=3&offset=1");
    expect([first.page.tasks.length, first.page.truncated]).toEqual([1, true]);
    expect([rest.page.tasks.map((t) => t.taskId), rest.page.truncated]).toEqual([
      ["t001", "t002"],
      false,
    ]);
  });
});

describe("GET /logs is bounded in bytes", () => {
  test("200 entries logged with 900 KB details: each kept at 1 KiB, the answer about 200 KiB", async () => {
    using db = openStores(":memory:", 1000);
    const logger = createLogger({ level: "error", clock: new ManualClock(0), write: () => {} });
    logger.attach(db.stores.connectionLog);
    for (let i = 0; i < LOG_LIMIT_MAX; i++) {
      logger.connection("downstream_disconnect", `reason ${"r".repeat(900_000)}`);
    }
    const { deps } = fakeDeps();
    const app = testApp({ ...deps, listLogs: (n) => db.stores.connectionLog.list(n) });
    const text = await (await app.handle(request(`/logs?limit=${LOG_LIMIT_MAX}`))).text();
    const logs = (JSON.parse(text) as { logs: { details: string }[] }).logs;
    expect({
      entries: logs.length,
      each: logs.every((l) => bytes(l.details) <= LOG_DETAILS_MAX_BYTES),
      total: bytes(text) <= LOG_LIMIT_MAX * (LOG_DETAILS_MAX_BYTES + 200),
    }).toEqual({ entries: LOG_LIMIT_MAX, each: true, total: true });
  });
});
