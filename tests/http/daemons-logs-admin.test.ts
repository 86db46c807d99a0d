import { describe, expect, test } from "bun:test";
import type { ConnectionLogEntry } from "../../src/http/deps.ts";
import { fakeDeps, json, request, T0, testApp } from "./fake-deps.ts";

describe("GET /daemons", () => {
  test("lists daemons with a task count, never a key or socket", async () => {
    const { deps, state } = fakeDeps();
    state.daemons = [
      {
        daemonId: "d-1",
        machineId: "m-1",
        hostname: "box-1",
        role: "daemon",
        maxConcurrentTasks: 4,
        taskIds: ["a", "b"],
        connectedAt: T0,
        lastHeartbeat: null,
        // What a careless adapter might leak: it must not reach the wire.
        ...({ apiKey: "sekrit", conn: { id: "c" } } as object),
      },
      {
        daemonId: "d-2",
        machineId: "m-2",
        hostname: "child",
        role: "relay",
        maxConcurrentTasks: 0,
        taskIds: [],
        connectedAt: T0 + 1,
        lastHeartbeat: T0 + 2,
      },
    ];
    const res = await testApp(deps).handle(request("/daemons"));
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toContain("sekrit");
    expect(JSON.parse(text)).toEqual({
      daemons: [
        {
          daemonId: "d-1",
          machineId: "m-1",
          hostname: "box-1",
          maxConcurrentTasks: 4,
          activeTasks: 2,
          taskIds: ["a", "b"],
          connectedAt: new Date(T0).toISOString(),
          lastHeartbeat: null,
          role: "daemon",
          draining: false,
        },
        {
          daemonId: "d-2",
          machineId: "m-2",
          hostname: "child",
          maxConcurrentTasks: 0,
          activeTasks: 0,
          taskIds: [],
          connectedAt: new Date(T0 + 1).toISOString(),
          lastHeartbeat: new Date(T0 + 2).toISOString(),
          role: "relay",
          draining: false,
        },
      ],
      drainingMachines: [],
    });
  });

  test("no daemons → empty list", async () => {
    const res = await testApp(fakeDeps().deps).handle(request("/daemons"));
    expect(await json(res)).toEqual({ daemons: [], drainingMachines: [] });
  });
});

describe("GET /logs", () => {
  const logs: ConnectionLogEntry[] = Array.from({ length: 300 }, (_, i) => ({
    id: 300 - i,
    event: "downstream_connect",
    timestamp: T0 + (300 - i),
    details: i === 0 ? null : `entry ${300 - i}`,
  }));

  test("newest first as the store gives them, timestamps ISO, default limit 50", async () => {
    const { deps, state } = fakeDeps({ logs });
    const res = await testApp(deps).handle(request("/logs"));
    const body = await json(res);
    expect(res.status).toBe(200);
    expect(state.logLimits).toEqual([50]);
    expect(body.logs).toHaveLength(50);
    expect(body.logs[0]).toEqual({
      id: 300,
      event: "downstream_connect",
      timestamp: new Date(T0 + 300).toISOString(),
      details: null,
    });
    expect(body.logs[1].id).toBe(299);
  });

  test.each([
    ["0", 1],
    ["1", 1],
    ["200", 200],
    ["1000", 200],
  ])("limit=%s is clamped to %d", async (raw, expected) => {
    const { deps, state } = fakeDeps({ logs });
    const res = await testApp(deps).handle(request(`/logs?limit=${raw}`));
    expect({ status: res.status, n: (await json(res)).logs.length }).toEqual({
      status: 200,
      n: expected,
    });
    expect(state.logLimits).toEqual([expected]);
  });

  test.each(["abc", "-1", "3.5"])("limit=%s → 400 naming limit", async (raw) => {
    const { deps, state } = fakeDeps({ logs });
    const res = await testApp(deps).handle(request(`/logs?limit=${raw}`));
    expect(res.status).toBe(400);
    expect((await json(res)).error).toContain("'limit'");
    expect(state.logLimits).toEqual([]);
  });
});

describe("POST /reconnect", () => {
  test("asks the link to reconnect and returns its answer", async () => {
    const { deps, state } = fakeDeps();
    const res = await testApp(deps).handle(request("/reconnect", { method: "POST" }));
    expect({ status: res.status, body: await json(res), calls: state.reconnects }).toEqual({
      status: 200,
      body: { success: true, message: "Reconnection initiated" },
      calls: 1,
    });
  });

  test("reports failure when upstream is not configured", async () => {
    const { deps } = fakeDeps();
    deps.reconnect = () => ({ success: false, message: "Upstream not configured: no server URL" });
    const res = await testApp(deps).handle(request("/reconnect", { method: "POST" }));
    expect(await json(res)).toEqual({
      success: false,
      message: "Upstream not configured: no server URL",
    });
  });

  test("GET /reconnect does not reconnect", async () => {
    const { deps, state } = fakeDeps();
    const res = await testApp(deps).handle(request("/reconnect"));
    expect({ status: res.status, calls: state.reconnects }).toEqual({ status: 404, calls: 0 });
  });
});
