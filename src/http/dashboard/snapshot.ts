/**
 * What the dashboard shows, built from HttpDeps alone: one plain object,
 * times in integer ms. The event stream sends it whenever its JSON changes,
 * so nothing in it may change by itself (no "now", no uptime): the page
 * derives ages and running durations from `serverTime`, sent beside it.
 */
import { boundNullable, boundText } from "../../core/text-bound.ts";
import type { ConnectionLogEntry, HttpDeps, TaskStatus } from "../deps.ts";
import { statusOf } from "../overall-status.ts";

export const RECENT_TASKS = 25;
export const RECENT_LOGS = 15;
/** Daemons listed (by machineId); the counters still cover every one. */
export const LISTED_DAEMONS = 50;
/** Most UTF-8 bytes of a hostname, task name, error or log details shown. */
export const SHOWN_TEXT_MAX_BYTES = 256;
/**
 * The largest snapshot JSON, from the parts above at their worst: a JSON
 * string can take six bytes per UTF-8 byte (a control character as \u0001), a
 * machineId is at most 256 and a taskId 512 UTF-16 units (the protocol's
 * limits). 50 daemons × 3.4 KiB + 25 tasks × 7.9 KiB + 15 log entries ×
 * 1.8 KiB ≈ 395 KiB, and the fixed part is small; tests/http/sse-bounds.test.ts
 * builds that worst case.
 */
export const SNAPSHOT_MAX_BYTES = 512 * 1024;

export interface DashboardDaemon {
  daemonId: string;
  machineId: string;
  hostname: string;
  role: "daemon" | "relay";
  active: number;
  capacity: number;
  connectedAt: number;
  lastHeartbeat: number | null;
  /** Its machine is drained: no new task. */
  draining: boolean;
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
  /** The relay drains (POST /drain). */
  draining: boolean;
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
    /** Over every connected daemon, not only the listed ones. */
    busySlots: number;
    capacity: number;
  };
  /** The first LISTED_DAEMONS by machineId; `counters.connectedDaemons` counts them all. */
  daemons: DashboardDaemon[];
  /** Newest first. */
  tasks: DashboardTask[];
  /** Newest first. */
  logs: ConnectionLogEntry[];
}

const shown = (text: string) => boundText(text, SHOWN_TEXT_MAX_BYTES);

export function buildSnapshot(deps: HttpDeps): DashboardSnapshot {
  const up = deps.upstream();
  const c = deps.counters();
  const all = deps.listDaemons();
  const drained = new Set(deps.drainingMachines());
  return {
    relay: {
      version: deps.version,
      agentName: deps.agentName,
      machineId: deps.machineId,
      startedAt: deps.startedAt,
    },
    status: statusOf(up.authenticated, c.connectedDaemons),
    draining: deps.relayDraining(),
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
      busySlots: all.reduce((n, d) => n + d.taskIds.length, 0),
      capacity: all.reduce((n, d) => n + d.maxConcurrentTasks, 0),
    },
    daemons: all
      // Stable order, so a reconnecting daemon does not reshuffle the page.
      .toSorted((a, b) => a.machineId.localeCompare(b.machineId))
      .slice(0, LISTED_DAEMONS)
      .map((d) => ({
        daemonId: d.daemonId,
        machineId: d.machineId,
        hostname: shown(d.hostname),
        role: d.role,
        active: d.taskIds.length,
        capacity: d.maxConcurrentTasks,
        connectedAt: d.connectedAt,
        lastHeartbeat: d.lastHeartbeat,
        draining: drained.has(d.machineId),
      })),
    tasks: deps.listTasks({ limit: RECENT_TASKS, offset: 0 }).tasks.map((t) => ({
      taskId: t.taskId,
      taskName: shown(t.taskName),
      status: t.status,
      machineId: t.machineId,
      receivedAt: t.receivedAt,
      dispatchedAt: t.dispatchedAt,
      completedAt: t.completedAt,
      error: boundNullable(t.error, SHOWN_TEXT_MAX_BYTES),
    })),
    logs: deps.listLogs(RECENT_LOGS).map((l) => ({
      ...l,
      details: boundNullable(l.details, SHOWN_TEXT_MAX_BYTES),
    })),
  };
}
