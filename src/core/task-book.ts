/**
 * The relay's tasks and their lifecycle (docs/protocol.md "Task lifecycle"):
 * spawn, FIFO queue, dispatch, control routing, completion, and the grace
 * period of a daemon that went away. The database is the durable copy; this
 * class keeps the live view in maps keyed by task and machine. Which daemon
 * holds a task is not kept here: the registry (daemon-registry.ts) is asked.
 */
import { encodeTaskComplete } from "../protocol/encode.ts";
import type { ControlCommandType } from "../protocol/messages.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { Daemon } from "./daemon.ts";
import type { DaemonRegistry } from "./daemon-registry.ts";
import type { EndedStatus, EventLog, SendResult, Stores, TaskStatus } from "./ports.ts";
import { RECONCILE_SETTLE_MS, Reconciliation, type TaskCount } from "./reconciliation.ts";
import { TaskQueue } from "./task-queue.ts";
import type { TimelineEvents } from "./task-timeline.ts";
import { WaitingCommands } from "./waiting-commands.ts";

export { RECONCILE_SETTLE_MS } from "./reconciliation.ts";

interface ActiveTask {
  readonly taskId: string;
  readonly spawnFrame: string;
  readonly receivedAt: number;
}

export interface UpstreamForwarder {
  forward(text: string, critical: boolean): void;
  /** Would a frame forwarded now wait in the outbox? (UpstreamOutbox.holding; absent: no) */
  holding?(): boolean;
}

export interface TaskEvents {
  /** A spawnTask was written to a daemon `latencyMs` after it was received. */
  dispatched(latencyMs: number): void;
  ended(status: TaskStatus): void;
}

export class TaskBook {
  private readonly tasks = new Map<string, ActiveTask>();
  private readonly queue = new TaskQueue();
  /** Grace timers of machines away with tasks; what they hold is the registry's. */
  private readonly grace = new Map<string, TimerHandle>();
  private readonly reconciliation: Reconciliation;
  private readonly commands: WaitingCommands;

  constructor(
    private readonly stores: Stores,
    private readonly registry: DaemonRegistry,
    private readonly upstream: UpstreamForwarder,
    private readonly clock: Clock,
    private readonly log: EventLog,
    private readonly graceMs: number,
    private readonly events: TaskEvents,
    /** Has the daemon's socket been read without a pause for `ms`? (DaemonLiveness.readSteadilyFor) */
    readSteadilyFor: (daemon: Daemon, ms: number) => boolean,
    /** Told what happens to each task (task-timeline.ts). */
    private readonly timeline: TimelineEvents,
  ) {
    this.reconciliation = new Reconciliation((d) => readSteadilyFor(d, RECONCILE_SETTLE_MS));
    this.commands = new WaitingCommands(stores.tasks, (daemon, frame, then) =>
      this.sendTo(daemon, frame, then),
    );
  }

  get queued(): number {
    return this.queue.size;
  }

  get active(): number {
    return this.tasks.size;
  }

  /** Every task not ended: what the relay's own heartbeat reports upstream. */
  heartbeatTasks(): string[] {
    return [...this.tasks.keys()];
  }

  queuedIds(): string[] {
    return this.queue.ids();
  }

  /** Loads queued and dispatched tasks after a restart; grace counts from now. */
  restore(): void {
    const away = new Set<string>();
    for (const t of this.stores.tasks.loadActive()) {
      const { taskId } = t;
      this.tasks.set(taskId, { taskId, spawnFrame: t.spawnFrame, receivedAt: t.receivedAt });
      this.commands.restore(taskId);
      this.timeline.restored(taskId, t.status === "dispatched" ? t.machineId : null);
      if (t.status !== "dispatched") this.queue.push(taskId);
      else if (t.machineId) {
        this.registry.restore(t.machineId, taskId);
        this.reconciliation.track(taskId, true);
        away.add(t.machineId);
      }
    }
    for (const machineId of away) this.startGrace(machineId);
    if (this.tasks.size > 0) {
      this.log.connection(
        "restored",
        `Restored ${this.queue.size} queued and ${this.tasks.size - this.queue.size} dispatched tasks`,
      );
    }
  }

  spawn(taskId: string, taskName: string, frame: string): void {
    if (this.tasks.has(taskId)) {
      this.log.log("info", "duplicate_spawn", {
        taskId,
        detail: "task is pending or dispatched; ignored",
      });
      return;
    }
    const receivedAt = this.clock.now();
    this.stores.tasks.savePending({ taskId, taskName, spawnFrame: frame, receivedAt });
    this.tasks.set(taskId, { taskId, spawnFrame: frame, receivedAt });
    this.commands.started(taskId);
    this.timeline.received(taskId);
    this.queue.push(taskId);
    this.dispatchQueued();
    if (this.queue.has(taskId)) {
      this.timeline.queued(taskId, this.queue.size - 1);
      this.log.log("info", "task_queued", { taskId, queued: this.queue.size });
    }
  }

  control(type: ControlCommandType, taskId: string, frame: string): void {
    if (!this.tasks.has(taskId)) {
      this.log.connection("warning", `${type} for unknown or ended task ${taskId} dropped`, "warn");
      return;
    }
    const holder = this.registry.holderOf(taskId);
    if (!holder && type === "interruptTask") {
      this.queue.delete(taskId);
      this.end(taskId, "cancelled", "interrupted before dispatch");
      this.upstream.forward(encodeTaskComplete(taskId, false, "interrupted before dispatch"), true);
      return;
    }
    // Queued, or its daemon is away: it waits, in order, for when the task reaches a daemon.
    this.commands.route(taskId, frame, holder?.daemon);
  }

  /** Every frame to a daemon leaves only after the writes behind it are committed. */
  private sendTo(daemon: Daemon, frame: string, then?: (result: SendResult) => void): void {
    this.stores.afterCommit(() => {
      const result = daemon.conn.send(frame);
      if (result === "backpressure") this.registry.setBackpressured(daemon, true);
      then?.(result);
    });
  }

  /** Dispatches queued tasks while some daemon has a free slot. */
  dispatchQueued(): void {
    while (this.queue.size > 0) {
      const daemon = this.registry.pick();
      if (!daemon) return;
      const taskId = this.queue.shift() as string;
      const task = this.tasks.get(taskId);
      if (task) this.dispatchTo(daemon, task);
    }
  }

  /**
   * Records the dispatch, then writes spawnTask once that is committed: a crash
   * in between leaves a task marked dispatched that its daemon never got, which
   * the daemon's first heartbeat after reconnecting settles as lost. The other
   * order could run a task twice.
   */
  private dispatchTo(daemon: Daemon, task: ActiveTask): void {
    const now = this.clock.now();
    this.registry.assign(daemon, task.taskId);
    const count: TaskCount = this.reconciliation.track(task.taskId, false);
    this.stores.tasks.markDispatched(task.taskId, daemon.daemonId, daemon.machineId, now);
    this.events.dispatched(now - task.receivedAt);
    this.timeline.dispatched(task.taskId, daemon.machineId);
    this.sendTo(daemon, task.spawnFrame, (result) => {
      // The socket is going away: its close hands the task to the grace period.
      if (result === "dropped") this.registry.setBackpressured(daemon, true);
      else this.reconciliation.sent(count, daemon);
    });
    this.deliverWaiting(daemon, task.taskId);
  }

  /** The task reached `daemon`: the commands that waited for it go. */
  private deliverWaiting(daemon: Daemon, taskId: string): void {
    const count = this.commands.deliver(daemon, taskId);
    if (count > 0) this.timeline.commandsDelivered(taskId, count);
  }

  /** A daemon reported `taskComplete` for a task it holds. */
  complete(taskId: string, success: boolean, error: string | null): void {
    if (this.tasks.has(taskId)) this.end(taskId, success ? "completed" : "failed", error);
    else this.registry.release(taskId);
    this.dispatchQueued();
  }

  reportStatus(taskId: string, status: string): void {
    this.stores.tasks.setReportedStatus(taskId, status);
    this.timeline.statusReported(taskId, status);
  }

  /**
   * A daemon authenticated, and holds what its machine held (the registry
   * moved it): its grace period ends and waiting commands are delivered.
   */
  attach(daemon: Daemon): void {
    const timer = this.grace.get(daemon.machineId);
    if (timer !== undefined) {
      this.clock.clearTimeout(timer);
      this.grace.delete(daemon.machineId);
    }
    this.reconciliation.attached(daemon);
    if (daemon.holds.size === 0) return;
    this.log.connection(
      "reattached",
      `Daemon ${daemon.hostname} took back ${daemon.holds.size} tasks`,
    );
    for (const id of daemon.holds) {
      this.timeline.reattached(id, daemon.machineId);
      this.deliverWaiting(daemon, id);
    }
  }

  /** A daemon's connection ended: its machine's tasks wait for it for the grace period. */
  detach(daemon: Daemon): void {
    const held = this.registry.heldBy(daemon.machineId);
    for (const id of held) this.timeline.away(id);
    if (held.size > 0) this.startGrace(daemon.machineId);
    this.dispatchQueued();
  }

  /** An accepted heartbeat, or a part of one (reconciliation.ts). */
  heartbeat(daemon: Daemon, listed: readonly string[], more = false): void {
    const lost = this.reconciliation.heartbeat(daemon, listed, more);
    if (lost.length === 0) return;
    for (const [taskId, why] of lost) this.lose(taskId, why);
    this.dispatchQueued();
  }

  private startGrace(machineId: string): void {
    const timer = this.clock.setTimeout(() => this.graceExpired(machineId), this.graceMs);
    this.grace.set(machineId, timer);
  }

  private graceExpired(machineId: string): void {
    if (!this.grace.delete(machineId)) return;
    for (const id of [...this.registry.heldBy(machineId)])
      this.lose(id, `daemon ${machineId} did not come back within ${this.graceMs} ms`);
  }

  private lose(taskId: string, why: string): void {
    this.log.connection("task_lost", `Task ${taskId} lost: ${why}`, "warn");
    this.end(taskId, "lost", "daemon lost");
    this.upstream.forward(encodeTaskComplete(taskId, false, "daemon lost"), true);
  }

  private end(taskId: string, status: EndedStatus, error: string | null): void {
    this.tasks.delete(taskId);
    this.registry.release(taskId);
    this.reconciliation.forget(taskId);
    this.commands.ended(taskId);
    this.stores.tasks.markEnded(taskId, status, this.clock.now(), error);
    this.timeline.ended(taskId, status);
    this.events.ended(status);
  }

  /** Clears timers (shutdown); state stays in the database. */
  stop(): void {
    for (const timer of this.grace.values()) this.clock.clearTimeout(timer);
    this.grace.clear();
  }
}
