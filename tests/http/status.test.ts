import { describe, expect, test } from "bun:test";
import { fakeDeps, json, request, T0, testApp } from "./fake-deps.ts";

async function getJson(app: ReturnType<typeof testApp>, path: string) {
  const res = await app.handle(request(path));
  return { status: res.status, body: await json(res) };
}

describe("GET /status and /", () => {
  test("reports every field, times as ISO-8601", async () => {
    const { deps } = fakeDeps();
    const { status, body } = await getJson(testApp(deps), "/status");
    expect(status).toBe(200);
    expect(body).toEqual({
      status: "ok",
      agentName: "edge-test",
      upstreamConnected: true,
      daemonId: "relay-at-server",
      lastHeartbeat: new Date(T0 + 30_000).toISOString(),
      connectedDaemons: 1,
      activeTasks: 3,
      totalTasksProcessed: 42,
      version: "9.8.7",
      machineId: "relay-machine",
      pendingTasks: 1,
      reconnectAttempts: 0,
      upstreamFlapping: false,
      linkDrops: 0,
      lastDisconnectAt: null,
      lastDisconnectReason: null,
      lastConnectedAt: new Date(T0).toISOString(),
      uptimeSeconds: 90,
      outbox: { frames: 5, bytes: 500, waiting: 5, droppedFrames: 1, full: false },
      lostTasks: 2,
      draining: false,
      upstreamState: "open",
      storage: { ok: true, code: null, error: null, since: null, attempts: 0, pendingWrites: 0 },
    });
  });

  test("/ is the same document as /status", async () => {
    const app = testApp(fakeDeps().deps);
    expect((await getJson(app, "/")).body).toEqual((await getJson(app, "/status")).body);
  });

  test.each([
    [true, 2, "ok"],
    [true, 0, "degraded"],
    [false, 3, "disconnected"],
    [false, 0, "disconnected"],
  ] as const)("authenticated=%p daemons=%p → %s", async (authenticated, daemons, expected) => {
    const { deps, state } = fakeDeps();
    state.upstream = {
      ...state.upstream,
      authenticated,
      state: authenticated ? "open" : "backoff",
    };
    state.counters = { ...state.counters, connectedDaemons: daemons };
    const { body } = await getJson(testApp(deps), "/status");
    expect(body).toMatchObject({
      status: expected,
      upstreamConnected: authenticated,
      connectedDaemons: daemons,
    });
  });

  test("never-happened times are null, not 1970", async () => {
    const { deps, state } = fakeDeps();
    state.upstream = {
      state: "unconfigured",
      authenticated: false,
      daemonId: null,
      reconnectAttempts: 4,
      lastConnectedAt: null,
      lastHeartbeatAt: null,
      linkDrops: 0,
      flapping: false,
      lastDisconnectAt: null,
      lastDisconnectReason: null,
    };
    const { body } = await getJson(testApp(deps), "/status");
    expect(body).toMatchObject({
      status: "disconnected",
      daemonId: null,
      lastHeartbeat: null,
      lastConnectedAt: null,
      reconnectAttempts: 4,
      upstreamState: "unconfigured",
    });
  });
});

describe("GET /health", () => {
  test("is healthy whether or not upstream is connected", async () => {
    const { deps, state } = fakeDeps();
    const app = testApp(deps);
    expect(await getJson(app, "/health")).toEqual({
      status: 200,
      body: { healthy: true, upstreamConnected: true },
    });
    state.upstream = { ...state.upstream, authenticated: false };
    expect(await getJson(app, "/health")).toEqual({
      status: 200,
      body: { healthy: true, upstreamConnected: false },
    });
  });
});

describe("GET /ready", () => {
  test("200 when the relay can take work, 503 with the reasons when it cannot; no token needed", async () => {
    const { deps, state } = fakeDeps();
    const app = testApp(deps, { adminToken: "secret-token-123", protectReads: true }, "10.1.2.3");
    expect(await getJson(app, "/ready")).toEqual({
      status: 200,
      body: { ready: true, reasons: [] },
    });
    state.upstream = { ...state.upstream, authenticated: false };
    expect((await getJson(app, "/ready")).status).toBe(200);
    state.notReady = ["shutting down"];
    expect(await getJson(app, "/ready")).toEqual({
      status: 503,
      body: { ready: false, reasons: ["shutting down"] },
    });
  });
});
