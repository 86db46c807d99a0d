import { describe, expect, test } from "bun:test";
import type { StorageStatus, Stores, TaskQuery } from "../../src/core/ports.ts";
import type { Relay } from "../../src/core/relay.ts";
import { RelayStats } from "../../src/core/stats.ts";
import type { UpstreamLink } from "../../src/core/upstream-link.ts";
import type { UpstreamOutbox } from "../../src/core/upstream-outbox.ts";
import { createHttpDeps, type HttpSources } from "../../src/http/deps.ts";
import { json, request, T0, task, testApp } from "./fake-deps.ts";

function sources(over: Partial<HttpSources> = {}) {
  const daemon = {
    // Fields the API must not show ride along, as on a real Daemon.
    conn: { id: "c1", send: () => "sent", close() {} },
    daemonId: "d-1",
    machineId: "m-1",
    hostname: "box",
    role: "daemon" as const,
    capacity: 3,
    holds: new Set(["a", "b"]),
    connectedAt: T0,
    turn: 1,
    backpressured: false,
    retired: false,
  };
  const registry = { size: 1, list: () => [daemon], drainingMachines: () => ["m-1", "m-away"] };
  const stats = new RelayStats();
  stats.ended("lost");
  stats.ended("completed");
  const queries: TaskQuery[] = [];
  const notReady: string[] = [];
  const storage: { status: StorageStatus } = { status: { ok: true } };
  let reconnects = 0;
  const src: HttpSources = {
    relay: {
      registry,
      liveness: { lastHeartbeat: (d) => (d === daemon ? T0 + 5 : null) },
      tasks: { active: 4, queued: 2 },
      timeline: { view: () => null },
      stats,
      readiness: () => notReady.slice(),
      releaseBinding: (machineId, disconnect) =>
        machineId === "m-1"
          ? { ok: true, value: { disconnected: disconnect } }
          : { ok: false, error: "no binding" },
      draining: true,
      drainMachine: (machineId, on) => ({
        machineId,
        draining: on,
        connected: false,
        changed: true,
      }),
      drainRelay: (on) => ({ draining: on, changed: true }),
    },
    link: {
      state: { kind: "open", daemonId: "up-1", since: T0 },
      authenticated: true,
      daemonId: "up-1",
      reconnectAttempts: 0,
      lastConnectedAt: T0,
      lastHeartbeatAt: null,
      linkDrops: 2,
      flapping: true,
      lastDisconnectAt: T0,
      lastDisconnectReason: "code 1009: frame too large",
      reconnectNow: () => {
        reconnects += 1;
        return { success: true, message: "Reconnection initiated" };
      },
    },
    reload: () => ({
      result: "ok",
      changed: ["MAKIMA_RELAY_DAEMON_KEYS"],
      errors: [],
      revoked: [],
    }),
    outbox: {
      stats: () => ({ frames: 7, bytes: 700, waiting: 9 }),
      counters: { droppedFrames: 3, droppedBytes: 30 },
      isFull: false,
    },
    stores: {
      tasks: {
        list: (q) => {
          queries.push(q);
          return { tasks: [{ ...task({ taskId: "a" }), spawnFrame: "{}", seq: 1 }], total: 9 };
        },
        get: (id) => (id === "a" ? { ...task({ taskId: "a" }), spawnFrame: "{}", seq: 1 } : null),
        totalReceived: () => 12,
      },
      connectionLog: {
        list: (n) => [{ id: 1, event: "e", timestamp: T0, details: null }].slice(0, n),
      },
      storage: () => storage.status,
    },
    clock: { now: () => T0 + 2_000 },
    version: "1.2.3",
    agentName: "edge",
    machineId: "relay-m",
    startedAt: T0,
    ...over,
  };
  return { src, queries, storage, reconnects: () => reconnects };
}

describe("createHttpDeps", () => {
  test("adapts the real objects' fields into the status document", async () => {
    const app = testApp(createHttpDeps(sources().src));
    expect(await json(await app.handle(request("/status")))).toEqual({
      status: "ok",
      agentName: "edge",
      upstreamConnected: true,
      daemonId: "up-1",
      lastHeartbeat: null,
      connectedDaemons: 1,
      // 4 not ended, 2 of them queued: 2 dispatched (queued ones are pendingTasks).
      activeTasks: 2,
      totalTasksProcessed: 12,
      version: "1.2.3",
      machineId: "relay-m",
      pendingTasks: 2,
      reconnectAttempts: 0,
      upstreamFlapping: true,
      linkDrops: 2,
      lastDisconnectAt: new Date(T0).toISOString(),
      lastDisconnectReason: "code 1009: frame too large",
      lastConnectedAt: new Date(T0).toISOString(),
      uptimeSeconds: 2,
      outbox: { frames: 7, bytes: 700, waiting: 9, droppedFrames: 3, full: false },
      lostTasks: 1,
      draining: true,
      upstreamState: "open",
      storage: { ok: true, code: null, error: null, since: null, attempts: 0, pendingWrites: 0 },
    });
  });

  test("totalTasksProcessed is the task store's totalReceived, read on every request", async () => {
    const { src } = sources();
    let total = 0;
    src.stores.tasks = { ...src.stores.tasks, totalReceived: () => total };
    const app = testApp(createHttpDeps(src));
    expect((await json(await app.handle(request("/status")))).totalTasksProcessed).toBe(0);
    total = 31;
    expect((await json(await app.handle(request("/status")))).totalTasksProcessed).toBe(31);
  });

  test("a failing storage shows in /status with its code, since and what waits", async () => {
    const { src, storage } = sources();
    const app = testApp(createHttpDeps(src));
    storage.status = {
      ok: false,
      code: "SQLITE_FULL",
      error: "database or disk is full",
      since: T0 + 1_000,
      attempts: 3,
      pendingWrites: 42,
    };
    expect((await json(await app.handle(request("/status")))).storage).toEqual({
      ok: false,
      code: "SQLITE_FULL",
      error: "database or disk is full",
      since: new Date(T0 + 1_000).toISOString(),
      attempts: 3,
      pendingWrites: 42,
    });
    storage.status = { ok: true };
    expect((await json(await app.handle(request("/status")))).storage).toMatchObject({
      ok: true,
      code: null,
    });
  });

  test("daemons come from the registry: capacity as maxConcurrentTasks, task ids, no socket", async () => {
    const app = testApp(createHttpDeps(sources().src));
    expect(await json(await app.handle(request("/daemons")))).toEqual({
      daemons: [
        {
          daemonId: "d-1",
          machineId: "m-1",
          hostname: "box",
          maxConcurrentTasks: 3,
          activeTasks: 2,
          taskIds: ["a", "b"],
          connectedAt: new Date(T0).toISOString(),
          lastHeartbeat: new Date(T0 + 5).toISOString(),
          role: "daemon",
          draining: true,
        },
      ],
      drainingMachines: ["m-1", "m-away"],
    });
  });

  test("tasks, logs and reconnect go straight to the stores and the link", async () => {
    const { src, queries, reconnects } = sources();
    const app = testApp(createHttpDeps(src));
    const page = await json(await app.handle(request("/tasks?limit=5&offset=2&status=lost")));
    expect({
      total: page.total,
      ids: page.tasks.map((t: { taskId: string }) => t.taskId),
      queries,
    }).toEqual({
      total: 9,
      ids: ["a"],
      queries: [{ limit: 5, offset: 2, status: "lost" }],
    });
    expect((await app.handle(request("/tasks/a"))).status).toBe(200);
    expect((await app.handle(request("/tasks/zz"))).status).toBe(404);
    expect((await json(await app.handle(request("/logs")))).logs).toHaveLength(1);
    await app.handle(request("/reconnect", { method: "POST" }));
    expect(reconnects()).toBe(1);
  });

  test("the real Relay, UpstreamLink, UpstreamOutbox and Stores fit HttpSources as they are", () => {
    // Compile-time check: main.ts passes the real objects without adapters of its own.
    const fit = (relay: Relay, link: UpstreamLink, outbox: UpstreamOutbox, stores: Stores) =>
      ({ relay, link, outbox, stores }) satisfies Pick<
        HttpSources,
        "relay" | "link" | "outbox" | "stores"
      >;
    expect(typeof fit).toBe("function");
  });
});
