/**
 * What the dashboard shows, built from HttpDeps alone: one plain object,
 * times in integer ms. The event stream sends it whenever its JSON changes,
 * so nothing in it may change by itself (no "now", no uptime): the page
 * derives ages and running durations from `serverTime`, sent beside it.
 */
import type { ConnectionLogEntry, HttpDeps, TaskStatus } from "../http/deps.ts";
import { statusOf } from "../http/status.ts";

export const RECENT_TASKS = 25;
export const RECENT_LOGS = 15;

export interface DashboardDaemon {
  daemonId: string;
  machineId: string;
  hostname: string;
  role: "daemon" | "relay";
  active: number;
  capacity: number;
  connectedAt: number;
  lastHeartbeat: number | null;
}

export interface DashboardTask {
  taskId: string;
  taskName: string;
  status: TaskStatus;
  machineId: string | null;
  receivedAt: number;
  dispatchedAt: number | null;
  completedAt: number | null;
  error: string | null;
}

export interface DashboardSnapshot {
  relay: { version: string; agentName: string; machineId: string; startedAt: number };
  status: "ok" | "degraded" | "disconnected";
  upstream: {
    state: string;
    authenticated: boolean;
    reconnectAttempts: number;
    lastConnectedAt: number | null;
  };
  counters: {
    connectedDaemons: number;
    activeTasks: number;
    pendingTasks: number;
    lostTasks: number;
    totalTasksProcessed: number;
    outboxFrames: number;
    outboxDropped: number;
  };
  daemons: DashboardDaemon[];
  /** Newest first. */
  tasks: DashboardTask[];
  /** Newest first. */
  logs: ConnectionLogEntry[];
}

export function buildSnapshot(deps: HttpDeps): DashboardSnapshot {
  const up = deps.upstream();
  const c = deps.counters();
  return {
    relay: {
      version: deps.version,
      agentName: deps.agentName,
      machineId: deps.machineId,
      startedAt: deps.startedAt,
    },
    status: statusOf(up.authenticated, c.connectedDaemons),
    upstream: {
      state: up.state,
      authenticated: up.authenticated,
      reconnectAttempts: up.reconnectAttempts,
      lastConnectedAt: up.lastConnectedAt,
    },
    counters: {
      connectedDaemons: c.connectedDaemons,
      activeTasks: c.activeTasks,
      pendingTasks: c.pendingTasks,
      lostTasks: c.lostTasks,
      totalTasksProcessed: c.totalTasksProcessed,
      outboxFrames: c.outbox.frames,
      outboxDropped: c.outbox.droppedFrames,
    },
    daemons: deps
      .listDaemons()
      .map((d) => ({
        daemonId: d.daemonId,
        machineId: d.machineId,
        hostname: d.hostname,
        role: d.role,
        active: d.taskIds.length,
        capacity: d.maxConcurrentTasks,
        connectedAt: d.connectedAt,
        lastHeartbeat: d.lastHeartbeat,
      }))
      // Stable order, so a reconnecting daemon does not reshuffle the page.
      .sort((a, b) => a.machineId.localeCompare(b.machineId)),
    tasks: deps.listTasks({ limit: RECENT_TASKS, offset: 0 }).tasks.map((t) => ({
      taskId: t.taskId,
      taskName: t.taskName,
      status: t.status,
      machineId: t.machineId,
      receivedAt: t.receivedAt,
      dispatchedAt: t.dispatchedAt,
      completedAt: t.completedAt,
      error: t.error,
    })),
    logs: deps.listLogs(RECENT_LOGS),
  };
}
