/**
 * What the HTTP layer may see of the relay: a narrow, read-mostly surface of
 * plain snapshots (times in integer ms, as the core keeps them). Routes turn
 * them into the wire shapes; tests implement this interface with literals, so
 * no route needs a socket, a database or a timer.
 */
import type { Clock } from "../core/clock.ts";
import type { Daemon } from "../core/daemon.ts";
import type { Release } from "../core/daemon-admission.ts";
import type { MachineDrain, RelayDrain } from "../core/drains.ts";
import type {
  ConnectionLogEntry,
  ConnectionLogStore,
  StorageStatus,
  TaskQuery,
  TaskRecord,
  TaskStatus,
  TaskStore,
} from "../core/ports.ts";
import type { RelayStats } from "../core/stats.ts";
import type { TaskBook } from "../core/task-book.ts";
import type { TaskTimeline, TimelineView } from "../core/task-timeline.ts";
import type { UpstreamLink } from "../core/upstream-link.ts";
import type { UpstreamOutbox } from "../core/upstream-outbox.ts";

export type { ConnectionLogEntry, MachineDrain, RelayDrain, TaskQuery, TaskStatus };

/** The task fields the API exposes: never the spawn frame (it may carry the task's payload). */
export type TaskView = Pick<
  TaskRecord,
  | "taskId"
  | "taskName"
  | "status"
  | "dispatchedTo"
  | "machineId"
  | "receivedAt"
  | "dispatchedAt"
  | "completedAt"
  | "error"
  | "lastReportedStatus"
  | "attempts"
>;

/** A task's timeline (GET /tasks/:taskId/events), with the task as the API shows it. */
export type TaskTimelineView = Omit<TimelineView, "task"> & { task: TaskView };

/** A connected daemon (or child relay), without its socket or key. */
export interface DaemonView {
  daemonId: string;
  machineId: string;
  hostname: string;
  role: "daemon" | "relay";
  maxConcurrentTasks: number;
  taskIds: string[];
  connectedAt: number;
  lastHeartbeat: number | null;
}

export interface UpstreamView {
  /** `LinkState.kind`: unconfigured, idle, connecting, authenticating, open, backoff, stopped. */
  state: string;
  authenticated: boolean;
  daemonId: string | null;
  reconnectAttempts: number;
  lastConnectedAt: number | null;
  /** When the relay last sent its own heartbeat upstream. */
  lastHeartbeatAt: number | null;
  /** Authenticated links that dropped without the relay asking, since start. */
  linkDrops: number;
  /** The last links dropped soon after authenticating (UpstreamLink.flapping). */
  flapping: boolean;
  /** The last upstream close the relay did not ask for, and its code and reason. */
  lastDisconnectAt: number | null;
  lastDisconnectReason: string | null;
}

/** What a reload did: names of what changed and of files it could not use, never values. */
export interface ReloadView {
  result: "ok" | "error";
  changed: string[];
  errors: string[];
  /** MachineIds whose key is no longer accepted (their daemons were closed with 4401). */
  revoked: string[];
}

export interface RelayCounters {
  connectedDaemons: number;
  /** Tasks dispatched to a daemon and not ended (queued ones are `pendingTasks`). */
  activeTasks: number;
  /** Queued, waiting for a free daemon slot. */
  pendingTasks: number;
  /** Tasks that ended `lost` since this process started. */
  lostTasks: number;
  /** Distinct tasks ever received (stored counter; history pruning does not lower it). */
  totalTasksProcessed: number;
  outbox: {
    frames: number;
    bytes: number;
    waiting: number;
    droppedFrames: number;
    /** Over its limit with task results it may not drop: daemons are not read meanwhile. */
    full: boolean;
  };
  storage: StorageStatus;
}

/** The Prometheus exposition (src/metrics builds it); the HTTP layer only serves its text. */
export interface MetricsExposition {
  readonly contentType: string;
  render(): Promise<string>;
}

export interface HttpDeps {
  readonly version: string;
  readonly agentName: string;
  readonly machineId: string;
  /** Process start, ms since the epoch. */
  readonly startedAt: number;
  readonly clock: Pick<Clock, "now">;
  upstream(): UpstreamView;
  counters(): RelayCounters;
  listTasks(query: TaskQuery): { tasks: TaskView[]; total: number };
  getTask(taskId: string): TaskView | null;
  /** What happened to a task, in order; null for a task the relay does not know. */
  taskTimeline(taskId: string): TaskTimelineView | null;
  listDaemons(): DaemonView[];
  /** Newest first. */
  listLogs(limit: number): ConnectionLogEntry[];
  reconnect(): { success: boolean; message: string };
  /** Re-reads the secrets and the TLS files (POST /admin/reload; relay-reload.ts). */
  reload(): ReloadView;
  /**
   * Releases a machineId's binding to its key (DELETE /daemons/:machineId);
   * with `disconnect`, its connected daemon is closed too (4401).
   */
  releaseBinding(machineId: string, disconnect: boolean): Release;
  /** Every drained machineId, connected or not (GET /daemons marks the connected ones). */
  drainingMachines(): string[];
  /** Drains a machine (`on`) or returns it to rotation (POST/DELETE /daemons/:machineId/drain). */
  drainMachine(machineId: string, on: boolean): MachineDrain;
  /** Whether the relay itself drains (POST /drain; /status `draining`). */
  relayDraining(): boolean;
  drainRelay(on: boolean): RelayDrain;
  /** Why the relay cannot take work now; empty when it can (GET /ready). */
  notReadyBecause(): string[];
  /** Called for every 500 (a bug or a failing store); the client only sees "Internal error". */
  reportError?(error: unknown, where: { method: string; path: string }): void;
  /** Absent: GET /metrics answers an empty exposition. */
  readonly metrics?: MetricsExposition;
}

type ShownDaemon = Pick<
  Daemon,
  "daemonId" | "machineId" | "hostname" | "role" | "capacity" | "holds" | "connectedAt"
>;

/**
 * The real objects, as narrow as the adapter needs them: `Relay`, `UpstreamLink`,
 * `UpstreamOutbox` and `Stores` fit as they are, and tests can pass small fakes.
 */
export interface HttpSources {
  relay: {
    /** Only the daemon fields the API shows; a registry of full `Daemon`s fits. */
    registry: {
      readonly size: number;
      list(): ShownDaemon[];
      drainingMachines(): string[];
    };
    /** When each daemon's last heartbeat was read (DaemonLiveness). */
    liveness: { lastHeartbeat(daemon: ShownDaemon): number | null };
    tasks: Pick<TaskBook, "active" | "queued">;
    timeline: Pick<TaskTimeline, "view">;
    stats: Pick<RelayStats, "lostTasks">;
    readiness(): string[];
    releaseBinding(machineId: string, disconnect: boolean): Release;
    readonly draining: boolean;
    drainMachine(machineId: string, on: boolean): MachineDrain;
    drainRelay(on: boolean): RelayDrain;
  };
  link: Pick<
    UpstreamLink,
    | "state"
    | "authenticated"
    | "daemonId"
    | "reconnectAttempts"
    | "lastConnectedAt"
    | "lastHeartbeatAt"
    | "linkDrops"
    | "flapping"
    | "lastDisconnectAt"
    | "lastDisconnectReason"
    | "reconnectNow"
  >;
  outbox: Pick<UpstreamOutbox, "stats" | "counters" | "isFull">;
  stores: {
    tasks: Pick<TaskStore, "list" | "get" | "totalReceived">;
    connectionLog: Pick<ConnectionLogStore, "list">;
    storage(): StorageStatus;
  };
  clock: Pick<Clock, "now">;
  version: string;
  agentName: string;
  machineId: string;
  startedAt: number;
  reportError?: HttpDeps["reportError"];
  metrics?: MetricsExposition;
  /** The outbox limit: a relay whose outbox is nearly full is not ready for more. */
  outboxMaxBytes?: number;
  reload: HttpDeps["reload"];
}

/**
 * Adapts the real objects; the composition root (main.ts) only calls this.
 * One field per HttpDeps member, hence as long as the interface.
 */
export function createHttpDeps(src: HttpSources): HttpDeps {
  const { relay, link, outbox, stores } = src;
  return {
    version: src.version,
    agentName: src.agentName,
    machineId: src.machineId,
    startedAt: src.startedAt,
    clock: src.clock,
    upstream: () => ({
      state: link.state.kind,
      authenticated: link.authenticated,
      daemonId: link.daemonId,
      reconnectAttempts: link.reconnectAttempts,
      lastConnectedAt: link.lastConnectedAt,
      lastHeartbeatAt: link.lastHeartbeatAt,
      linkDrops: link.linkDrops,
      flapping: link.flapping,
      lastDisconnectAt: link.lastDisconnectAt,
      lastDisconnectReason: link.lastDisconnectReason,
    }),
    counters: () => {
      const box = outbox.stats();
      return {
        connectedDaemons: relay.registry.size,
        // Dispatched only, as the original relay counts them; queued ones are pendingTasks.
        activeTasks: relay.tasks.active - relay.tasks.queued,
        pendingTasks: relay.tasks.queued,
        lostTasks: relay.stats.lostTasks,
        totalTasksProcessed: stores.tasks.totalReceived(),
        outbox: {
          frames: box.frames,
          bytes: box.bytes,
          waiting: box.waiting,
          droppedFrames: outbox.counters.droppedFrames,
          full: outbox.isFull,
        },
        storage: stores.storage(),
      };
    },
    notReadyBecause: () => {
      const reasons = relay.readiness();
      const max = src.outboxMaxBytes;
      // Past 90 % the outbox starts dropping output: send new daemons elsewhere.
      if (max !== undefined && outbox.stats().bytes > 0.9 * max) reasons.push("outbox nearly full");
      return reasons;
    },
    listTasks: (query) => stores.tasks.list(query),
    getTask: (taskId) => stores.tasks.get(taskId),
    taskTimeline: (taskId) => relay.timeline.view(taskId),
    listDaemons: () =>
      relay.registry.list().map((d) => ({
        daemonId: d.daemonId,
        machineId: d.machineId,
        hostname: d.hostname,
        role: d.role,
        maxConcurrentTasks: d.capacity,
        taskIds: [...d.holds],
        connectedAt: d.connectedAt,
        lastHeartbeat: relay.liveness.lastHeartbeat(d),
      })),
    listLogs: (limit) => stores.connectionLog.list(limit),
    reconnect: () => link.reconnectNow(),
    reload: src.reload,
    releaseBinding: (machineId, disconnect) => relay.releaseBinding(machineId, disconnect),
    drainingMachines: () => relay.registry.drainingMachines(),
    drainMachine: (machineId, on) => relay.drainMachine(machineId, on),
    relayDraining: () => relay.draining,
    drainRelay: (on) => relay.drainRelay(on),
    ...(src.reportError ? { reportError: src.reportError } : {}),
    ...(src.metrics ? { metrics: src.metrics } : {}),
  };
}
