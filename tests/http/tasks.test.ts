import { describe, expect, test } from "bun:test";
import { fakeDeps, json, request, T0, task, testApp } from "./fake-deps.ts";

function setup(n = 3) {
  const tasks = Array.from({ length: n }, (_, i) =>
    task({ taskId: `t${i}`, status: i % 2 === 0 ? "completed" : "pending" }),
  );
  const { deps, state } = fakeDeps({ tasks });
  return { app: testApp(deps), state };
}

describe("GET /tasks", () => {
  test("defaults: limit 50, offset 0, no filter; task fields as the original names them", async () => {
    const { app, state } = setup(1);
    state.tasks[0] = task({
      taskId: "t0",
      status: "pending",
      dispatchedTo: null,
      machineId: null,
      dispatchedAt: null,
      completedAt: null,
      error: null,
      lastReportedStatus: "running",
      attempts: 2,
    });
    const res = await app.handle(request("/tasks"));
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({
      tasks: [
        {
          taskId: "t0",
          taskName: "name-t0",
          status: "pending",
          dispatchedTo: null,
          receivedAt: new Date(T0).toISOString(),
          dispatchedAt: null,
          completedAt: null,
          error: null,
          machineId: null,
          lastReportedStatus: "running",
          attempts: 2,
        },
      ],
      total: 1,
      limit: 50,
      offset: 0,
      truncated: false,
    });
    expect(state.taskQueries).toEqual([{ limit: 50, offset: 0 }]);
  });

  test("passes limit, offset and status down; total counts the filtered rows", async () => {
    const { app, state } = setup(5);
    const res = await app.handle(request("/tasks?limit=1&offset=1&status=completed"));
    const body = await json(res);
    expect({
      status: res.status,
      total: body.total,
      limit: body.limit,
      offset: body.offset,
    }).toEqual({
      status: 200,
      total: 3,
      limit: 1,
      offset: 1,
    });
    expect(body.tasks.map((t: { taskId: string }) => t.taskId)).toEqual(["t2"]);
    expect(state.taskQueries).toEqual([{ limit: 1, offset: 1, status: "completed" }]);
  });

  test.each([
    ["0", 1],
    ["1", 1],
    ["500", 500],
    ["1000", 500],
    ["99999999999999999999999", 500],
  ])("limit=%s is clamped to %d", async (raw, expected) => {
    const { app, state } = setup();
    const res = await app.handle(request(`/tasks?limit=${raw}`));
    expect({ status: res.status, limit: (await json(res)).limit }).toEqual({
      status: 200,
      limit: expected,
    });
    expect(state.taskQueries[0]?.limit).toBe(expected);
  });

  test.each([
    ["limit", "abc"],
    ["limit", "-1"],
    ["limit", "1.5"],
    ["limit", ""],
    ["offset", "abc"],
    ["offset", "-1"],
    ["offset", "2e3"],
  ])("%s=%s is a 400 naming the parameter, and the store is not asked", async (name, raw) => {
    const { app, state } = setup();
    const res = await app.handle(request(`/tasks?${name}=${encodeURIComponent(raw)}`));
    const body = await json(res);
    expect({ status: res.status, type: res.headers.get("content-type") }).toEqual({
      status: 400,
      type: expect.stringContaining("application/json"),
    });
    expect(body.error).toContain(`'${name}'`);
    expect(state.taskQueries).toEqual([]);
  });

  test("an unknown status is a 400 listing the allowed ones", async () => {
    const { app } = setup();
    const res = await app.handle(request("/tasks?status=running"));
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatch(/'status'.*pending.*lost/);
  });

  test.each(["pending", "dispatched", "completed", "failed", "cancelled", "lost"])(
    "status=%s is accepted",
    async (s) => {
      const { app, state } = setup();
      expect((await app.handle(request(`/tasks?status=${s}`))).status).toBe(200);
      expect(state.taskQueries[0]?.status).toBe(s as never);
    },
  );
});

describe("GET /tasks/:taskId", () => {
  test("returns the task object itself", async () => {
    const { app } = setup();
    const res = await app.handle(request("/tasks/t1"));
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ taskId: "t1", status: "pending", attempts: 1 });
  });

  test("does not expose the spawn frame even if the source row has one", async () => {
    const { app, state } = setup(0);
    state.tasks.push({ ...task({ taskId: "secret" }), spawnFrame: '{"apiKey":"x"}' } as never);
    const body = await await json(await app.handle(request("/tasks/secret")));
    expect(Object.keys(body).sort()).toEqual(
      [
        "attempts",
        "completedAt",
        "dispatchedAt",
        "dispatchedTo",
        "error",
        "lastReportedStatus",
        "machineId",
        "receivedAt",
        "status",
        "taskId",
        "taskName",
      ].sort(),
    );
  });

  test("unknown task → 404 JSON", async () => {
    const { app } = setup();
    const res = await app.handle(request("/tasks/nope"));
    expect({ status: res.status, body: await json(res) }).toEqual({
      status: 404,
      body: { error: "task 'nope' not found" },
    });
  });
});

describe("GET /tasks/:taskId/events", () => {
  test("the timeline: ISO times, every field of each event, the bound and the live counts", async () => {
    const t0 = task({ taskId: "t0", status: "dispatched", completedAt: null, attempts: 2 });
    const { deps, state } = fakeDeps({ tasks: [t0] });
    const shown = {
      machineId: "m-1",
      detail: null,
      upstream: null,
      outputFrames: 0,
      outputBytes: 0,
    } as const;
    state.timelines.t0 = {
      task: t0,
      events: [
        { ...shown, at: T0, kind: "received", machineId: null, detail: "attempt 2" },
        { ...shown, at: T0 + 10, kind: "dispatched", detail: "daemon d-1" },
        { ...shown, at: T0 + 20, kind: "statusReported", detail: "running", outputFrames: 3 },
        { ...shown, at: T0 + 30, kind: "lost", upstream: "held", outputFrames: 4 },
      ],
      omitted: 5,
      omittedAfter: 2,
      outputFrames: 4,
      outputBytes: 400,
    };
    const res = await testApp(deps).handle(request("/tasks/t0/events"));
    const at = (ms: number) => new Date(T0 + ms).toISOString();
    expect({ status: res.status, body: await json(res) }).toEqual({
      status: 200,
      body: {
        taskId: "t0",
        status: "dispatched",
        attempts: 2,
        events: [
          { ...shown, at: at(0), kind: "received", machineId: null, detail: "attempt 2" },
          { ...shown, at: at(10), kind: "dispatched", detail: "daemon d-1" },
          { ...shown, at: at(20), kind: "statusReported", detail: "running", outputFrames: 3 },
          { ...shown, at: at(30), kind: "lost", upstream: "held", outputFrames: 4 },
        ],
        omitted: 5,
        omittedAfter: 2,
        outputFrames: 4,
        outputBytes: 400,
      },
    });
  });

  test("unknown task → 404 JSON", async () => {
    const { app } = setup();
    const res = await app.handle(request("/tasks/nope/events"));
    expect({ status: res.status, body: await json(res) }).toEqual({
      status: 404,
      body: { error: "task 'nope' not found" },
    });
  });
});
