/** A hand-made HttpDeps: plain data, counters of calls, no sockets or database. */
import { createHttpApp, type HttpSecurity } from "../../src/http/app.ts";
import type {
  ConnectionLogEntry,
  DaemonView,
  HttpDeps,
  RelayCounters,
  TaskQuery,
  TaskTimelineView,
  TaskView,
  UpstreamView,
} from "../../src/http/deps.ts";

export const T0 = Date.UTC(2025, 0, 2, 3, 4, 5);

export function task(over: Partial<TaskView> & { taskId: string }): TaskView {
  return {
    taskName: `name-${over.taskId}`,
    status: "completed",
    dispatchedTo: "d-1",
    machineId: "m-1",
    receivedAt: T0,
    dispatchedAt: T0 + 10,
    completedAt: T0 + 1000,
    error: null,
    lastReportedStatus: null,
    attempts: 1,
    ...over,
  };
}

export function daemonView(over: Partial<DaemonView> = {}): DaemonView {
  return {
    daemonId: "d-1",
    machineId: "m-1",
    hostname: "box",
    role: "daemon",
    maxConcurrentTasks: 1,
    taskIds: [],
    connectedAt: T0,
    lastHeartbeat: null,
    ...over,
  };
}

export interface FakeState {
  upstream: UpstreamView;
  counters: RelayCounters;
  tasks: TaskView[];
  /** GET /tasks/:taskId/events answers these, by taskId (404 for others). */
  timelines: Record<string, TaskTimelineView>;
  daemons: DaemonView[];
  logs: ConnectionLogEntry[];
  /** Every query the routes passed down, to check parsing and clamping. */
  taskQueries: TaskQuery[];
  logLimits: number[];
  reconnects: number;
  notReady: string[];
  /** machineIds bound to a key; DELETE /daemons/:machineId removes them. */
  bindings: string[];
  releases: Array<{ machineId: string; disconnect: boolean }>;
  /** Drained machineIds, and whether the relay drains; the drain routes change them. */
  drained: string[];
  relayDraining: boolean;
}

export function fakeDeps(over: Partial<FakeState> = {}): { deps: HttpDeps; state: FakeState } {
  const state: FakeState = {
    upstream: {
      state: "open",
      authenticated: true,
      daemonId: "relay-at-server",
      reconnectAttempts: 0,
      lastConnectedAt: T0,
      lastHeartbeatAt: T0 + 30_000,
      linkDrops: 0,
      flapping: false,
      lastDisconnectAt: null,
      lastDisconnectReason: null,
    },
    counters: {
      connectedDaemons: 1,
      activeTasks: 3,
      pendingTasks: 1,
      lostTasks: 2,
      totalTasksProcessed: 42,
      outbox: { frames: 5, bytes: 500, waiting: 5, droppedFrames: 1, full: false },
      storage: { ok: true },
    },
    tasks: [],
    timelines: {},
    daemons: [],
    logs: [],
    taskQueries: [],
    logLimits: [],
    reconnects: 0,
    notReady: [],
    bindings: [],
    releases: [],
    drained: [],
    relayDraining: false,
    ...over,
  };
  const deps: HttpDeps = {
    version: "9.8.7",
    agentName: "edge-test",
    machineId: "relay-machine",
    startedAt: T0,
    clock: { now: () => T0 + 90_500 },
    upstream: () => state.upstream,
    counters: () => state.counters,
    notReadyBecause: () => state.notReady,
    listTasks: (q) => {
      state.taskQueries.push(q);
      const rows = state.tasks.filter((t) => !q.status || t.status === q.status);
      return { tasks: rows.slice(q.offset, q.offset + q.limit), total: rows.length };
    },
    getTask: (id) => state.tasks.find((t) => t.taskId === id) ?? null,
    taskTimeline: (id) => state.timelines[id] ?? null,
    listDaemons: () => state.daemons,
    listLogs: (limit) => {
      state.logLimits.push(limit);
      return state.logs.slice(0, limit);
    },
    reconnect: () => {
      state.reconnects += 1;
      return { success: true, message: "Reconnection initiated" };
    },
    reload: () => ({ result: "ok", changed: [], errors: [], revoked: [] }),
    releaseBinding: (machineId, disconnect) => {
      state.releases.push({ machineId, disconnect });
      if (!state.bindings.includes(machineId)) return { ok: false, error: "no binding" };
      state.bindings = state.bindings.filter((m) => m !== machineId);
      const connected = state.daemons.some((d) => d.machineId === machineId);
      return { ok: true, value: { disconnected: disconnect && connected } };
    },
    drainingMachines: () => state.drained.toSorted(),
    drainMachine: (machineId, on) => {
      const changed = state.drained.includes(machineId) !== on;
      state.drained = state.drained.filter((m) => m !== machineId).concat(on ? [machineId] : []);
      const connected = state.daemons.some((d) => d.machineId === machineId);
      return { machineId, draining: on, connected, changed };
    },
    relayDraining: () => state.relayDraining,
    drainRelay: (on) => {
      const changed = state.relayDraining !== on;
      state.relayDraining = on;
      return { draining: on, changed };
    },
  };
  return { deps, state };
}

/** The defaults: no token, no CORS origin, reads open. */
export const OPEN: HttpSecurity = { adminToken: null, corsOrigins: [], protectReads: false };

/**
 * The app as the socket server drives it, for requests from one peer address
 * (loopback unless said otherwise); security settings default to OPEN.
 */
export function testApp(
  deps: HttpDeps,
  security: Partial<HttpSecurity> = {},
  remoteAddress = "127.0.0.1",
): { handle(req: Request): Promise<Response> } {
  const app = createHttpApp(deps, { ...OPEN, ...security });
  return { handle: (req) => app.fetch(req, remoteAddress) };
}

/** GET (or another method) against the app, no socket involved. */
export function request(path: string, init?: RequestInit): Request {
  return new Request(`http://localhost${path}`, init);
}

/** A response body for assertions; tests index into it freely, `toEqual` does the checking. */
// biome-ignore lint/suspicious/noExplicitAny: JSON under test, checked by the assertions themselves
export async function json(res: Response): Promise<any> {
  return res.json();
}
