/**
 * The relay's tasks and their lifecycle (docs/protocol.md "Task lifecycle"):
 * spawn, FIFO queue, dispatch, control routing, completion, and the grace
 * period of a daemon that went away. The database is the durable copy; this
 * class keeps the live view in maps keyed by task and machine.
 */
import { encodeTaskComplete } from "../protocol/encode.ts";
import type { ControlCommandType } from "../protocol/messages.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { Daemon, DaemonRegistry } from "./daemon-registry.ts";
import type { EventLog, SendResult, Stores, TaskStatus } from "./ports.ts";
import { TaskQueue } from "./task-queue.ts";

/**
 * How long a daemon's socket must have been read without a pause before a
 * spawnTask sent to it starts the two-heartbeat count at once. Heartbeats
 * that waited in a paused socket were written before the daemon got the
 * task: read after it, they would look like omissions. A task sent sooner
 * counts once the daemon lists it, or once reading has gone on this long.
 */
export const RECONCILE_SETTLE_MS = 5000;

/** A control command waiting for its task to reach a daemon; `seq` is its arrival order. */
interface HeldCommand {
  readonly seq: number;
  readonly frame: string;
}

interface ActiveTask {
  readonly taskId: string;
  readonly spawnFrame: string;
  status: "pending" | "dispatched";
  machineId: string | null;
  readonly receivedAt: number;
  /** Commands waiting for this task to reach a daemon, in arrival order (also in the store). */
  held: HeldCommand[];
  /** Arrival number of the next control command for this task. */
  nextCommand: number;
  /** Its spawnTask has been written to a daemon socket (reconciliation counts from then). */
  spawnSent: boolean;
  /** Omissions from heartbeats count (see RECONCILE_SETTLE_MS). */
  countable: boolean;
  /** Consecutive accepted heartbeats of its daemon that did not list it. */
  misses: number;
}

interface AbsentMachine {
  tasks: Set<string>;
  timer: TimerHandle;
}

export interface UpstreamForwarder {
  forward(text: string, critical: boolean): void;
}

export interface TaskEvents {
  /** A spawnTask was written to a daemon `latencyMs` after it was received. */
  dispatched(latencyMs: number): void;
  ended(status: TaskStatus): void;
}

export class TaskBook {
  private readonly tasks = new Map<string, ActiveTask>();
  private readonly queue = new TaskQueue();
  private readonly absent = new Map<string, AbsentMachine>();
  /** Of a heartbeat in parts (relay-to-relay), the ids heard so far that the daemon holds. */
  private readonly heard = new WeakMap<Daemon, Set<string>>();

  constructor(
    private readonly stores: Stores,
    private readonly registry: DaemonRegistry,
    private readonly upstream: UpstreamForwarder,
    private readonly clock: Clock,
    private readonly log: EventLog,
    private readonly graceMs: number,
    private readonly events: TaskEvents,
  ) {}

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
    const byMachine = new Map<string, Set<string>>();
    for (const t of this.stores.tasks.loadActive()) {
      this.tasks.set(t.taskId, {
        taskId: t.taskId,
        spawnFrame: t.spawnFrame,
        status: t.status === "dispatched" ? "dispatched" : "pending",
        machineId: t.machineId,
        receivedAt: t.receivedAt,
        held: this.stores.tasks.heldCommands(t.taskId).map((frame, seq) => ({ seq, frame })),
        nextCommand: 0,
        spawnSent: t.status === "dispatched",
        countable: false,
        misses: 0,
      });
      const restored = this.tasks.get(t.taskId) as ActiveTask;
      restored.nextCommand = restored.held.length;
      if (t.status === "dispatched" && t.machineId) {
        const set = byMachine.get(t.machineId) ?? new Set<string>();
        set.add(t.taskId);
        byMachine.set(t.machineId, set);
      } else {
        this.queue.push(t.taskId);
      }
    }
    for (const [machineId, tasks] of byMachine) this.markAbsent(machineId, tasks);
    if (this.tasks.size > 0) {
      this.log.connection(
        "restored",
        `Restored ${this.queue.size} queued and ${this.tasks.size - this.queue.size} dispatched tasks`,
      );
    }
  }

  /** Is `taskId` dispatched to the daemon with this machine id? O(1). */
  isHeldBy(taskId: string, machineId: string): boolean {
    const task = this.tasks.get(taskId);
    return task !== undefined && task.status === "dispatched" && task.machineId === machineId;
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
    this.tasks.set(taskId, {
      taskId,
      spawnFrame: frame,
      status: "pending",
      machineId: null,
      receivedAt,
      held: [],
      nextCommand: 0,
      spawnSent: false,
      countable: false,
      misses: 0,
    });
    this.queue.push(taskId);
    this.dispatchQueued();
    if (this.queue.has(taskId)) {
      this.log.log("info", "task_queued", { taskId, queued: this.queue.size });
    }
  }

  control(type: ControlCommandType, taskId: string, frame: string): void {
    const task = this.tasks.get(taskId);
    if (!task) {
      this.log.connection("warning", `${type} for unknown or ended task ${taskId} dropped`, "warn");
      return;
    }
    if (task.status === "pending" && type === "interruptTask") {
      this.queue.delete(taskId);
      this.end(task, "cancelled", "interrupted before dispatch");
      this.upstream.forward(encodeTaskComplete(taskId, false, "interrupted before dispatch"), true);
      return;
    }
    const command = { seq: task.nextCommand++, frame };
    const holder = task.machineId ? this.registry.byMachineId(task.machineId) : undefined;
    if (task.status === "dispatched" && holder && task.held.length === 0) {
      this.sendHeld(holder, task, command);
      return;
    }
    // Queued, or its daemon is away: keep it, in order, for when the task reaches a daemon.
    this.hold(task, command);
  }

  /**
   * Keeps a command for when the task reaches a daemon, in arrival order: a
   * command whose send was dropped (the socket closed while it waited for a
   * commit) goes back ahead of any that arrived after it and were held meanwhile.
   */
  private hold(task: ActiveTask, command: HeldCommand): void {
    if (this.tasks.get(task.taskId) !== task) return;
    const at = task.held.findIndex((c) => c.seq > command.seq);
    if (at < 0) {
      this.stores.tasks.holdCommand(task.taskId, command.frame);
      task.held.push(command);
      return;
    }
    task.held.splice(at, 0, command);
    // Rare (a dropped send): the store keeps arrival order by rewriting the task's list.
    this.stores.tasks.dropHeldCommands(task.taskId);
    for (const c of task.held) this.stores.tasks.holdCommand(task.taskId, c.frame);
  }

  /** Sends a command; dropped (the socket is closing), it is held again, in its place. */
  private sendHeld(daemon: Daemon, task: ActiveTask, command: HeldCommand): void {
    this.sendTo(daemon, command.frame, (result) => {
      if (result === "dropped") this.hold(task, command);
    });
  }

  /** Every frame to a daemon leaves only after the writes behind it are committed. */
  private sendTo(daemon: Daemon, frame: string, then?: (result: SendResult) => void): void {
    this.stores.afterCommit(() => {
      const result = daemon.conn.send(frame);
      if (result === "backpressure") {
        daemon.backpressured = true;
        this.registry.changed(daemon);
      }
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
    task.status = "dispatched";
    task.machineId = daemon.machineId;
    daemon.tasks.add(task.taskId);
    daemon.turn = this.registry.nextTurn();
    this.registry.changed(daemon);
    this.stores.tasks.markDispatched(task.taskId, daemon.daemonId, daemon.machineId, now);
    this.events.dispatched(now - task.receivedAt);
    this.sendTo(daemon, task.spawnFrame, (result) => {
      // The socket is going away: its close hands the task to the grace period.
      if (result === "dropped") {
        daemon.backpressured = true;
        this.registry.changed(daemon);
        return;
      }
      task.spawnSent = true;
      task.countable =
        daemon.reading && this.clock.now() - daemon.readingSince >= RECONCILE_SETTLE_MS;
    });
    this.deliverHeld(daemon, task);
  }

  private deliverHeld(daemon: Daemon, task: ActiveTask): void {
    if (task.held.length === 0) return;
    const commands = task.held;
    task.held = [];
    this.stores.tasks.dropHeldCommands(task.taskId);
    // Dropped means the socket is closing: each is kept again for the reattach, in order.
    for (const command of commands) this.sendHeld(daemon, task, command);
  }

  /** A daemon reported `taskComplete` for a task it holds. */
  complete(daemon: Daemon, taskId: string, success: boolean, error: string | null): void {
    const task = this.tasks.get(taskId);
    daemon.tasks.delete(taskId);
    this.registry.changed(daemon);
    if (task) this.end(task, success ? "completed" : "failed", error);
    this.dispatchQueued();
  }

  reportStatus(taskId: string, status: string): void {
    this.stores.tasks.setReportedStatus(taskId, status);
  }

  /** A daemon authenticated: give back what its machine held, then deliver held commands. */
  attach(daemon: Daemon, from?: Daemon): void {
    const moved = new Set<string>(from ? from.tasks : []);
    const away = this.absent.get(daemon.machineId);
    if (away) {
      this.clock.clearTimeout(away.timer);
      this.absent.delete(daemon.machineId);
      for (const id of away.tasks) moved.add(id);
    }
    for (const id of moved) {
      const task = this.tasks.get(id);
      if (task?.status !== "dispatched") continue;
      task.machineId = daemon.machineId;
      task.misses = 0;
      daemon.tasks.add(id);
    }
    this.registry.changed(daemon);
    if (daemon.tasks.size > 0) {
      daemon.reconcile = new Set(daemon.tasks);
      this.log.connection(
        "reattached",
        `Daemon ${daemon.hostname} took back ${daemon.tasks.size} tasks`,
      );
      for (const id of daemon.tasks) {
        const task = this.tasks.get(id);
        if (task) this.deliverHeld(daemon, task);
      }
    }
  }

  /** A daemon's connection ended: its tasks wait for the same machine for the grace period. */
  detach(daemon: Daemon): void {
    const held = new Set<string>();
    for (const id of daemon.tasks) if (this.isHeldBy(id, daemon.machineId)) held.add(id);
    daemon.tasks.clear();
    if (held.size > 0) this.markAbsent(daemon.machineId, held);
    this.dispatchQueued();
  }

  /**
   * An accepted heartbeat (docs/protocol.md "Reconciliation"). The first one
   * after (re)authentication settles the tasks held before it: any it does
   * not list is lost. After that, a task whose spawnTask was sent and that is
   * missing from two consecutive heartbeats was forgotten by the daemon: lost
   * too. One omission alone can be a heartbeat crossing the spawnTask.
   *
   * A heartbeat in parts (`more`: the rest follows) counts once, when its last
   * part arrives, as the union of its parts. Only the ids the daemon holds are
   * kept meanwhile, so however many parts come, memory stays bounded by the
   * tasks it holds.
   */
  heartbeat(daemon: Daemon, listed: readonly string[], more = false): void {
    const present = this.heard.get(daemon) ?? new Set<string>();
    for (const id of listed) if (daemon.tasks.has(id)) present.add(id);
    if (more) {
      this.heard.set(daemon, present);
      return;
    }
    this.heard.delete(daemon);
    const before = daemon.reconcile;
    daemon.reconcile = null;
    if (daemon.tasks.size === 0) return;
    const lost: [ActiveTask, string][] = [];
    for (const id of daemon.tasks) {
      const task = this.tasks.get(id);
      if (!task) continue;
      if (present.has(id)) {
        task.misses = 0;
        task.countable = true;
      } else if (before?.has(id))
        lost.push([task, "not listed in the daemon's first heartbeat after reconnecting"]);
      else if (task.spawnSent && this.omissionCounts(daemon, task) && ++task.misses >= 2)
        lost.push([task, "missing from two consecutive heartbeats of its daemon"]);
    }
    if (lost.length === 0) return;
    for (const [task, why] of lost) {
      daemon.tasks.delete(task.taskId);
      this.lose(task, why);
    }
    this.registry.changed(daemon);
    this.dispatchQueued();
  }

  /** See RECONCILE_SETTLE_MS: a heartbeat could have waited in a paused socket. */
  private omissionCounts(daemon: Daemon, task: ActiveTask): boolean {
    if (!task.countable)
      task.countable =
        daemon.reading && this.clock.now() - daemon.readingSince >= RECONCILE_SETTLE_MS;
    return task.countable;
  }

  private markAbsent(machineId: string, tasks: Set<string>): void {
    const timer = this.clock.setTimeout(() => this.graceExpired(machineId), this.graceMs);
    this.absent.set(machineId, { tasks, timer });
  }

  private graceExpired(machineId: string): void {
    const away = this.absent.get(machineId);
    if (!away) return;
    this.absent.delete(machineId);
    for (const id of away.tasks) {
      const task = this.tasks.get(id);
      if (task && task.status === "dispatched" && task.machineId === machineId) {
        this.lose(task, `daemon ${machineId} did not come back within ${this.graceMs} ms`);
      }
    }
  }

  private lose(task: ActiveTask, why: string): void {
    this.log.connection("task_lost", `Task ${task.taskId} lost: ${why}`, "warn");
    this.end(task, "lost", "daemon lost");
    this.upstream.forward(encodeTaskComplete(task.taskId, false, "daemon lost"), true);
  }

  private end(task: ActiveTask, status: TaskStatus, error: string | null): void {
    this.tasks.delete(task.taskId);
    if (task.held.length > 0) this.stores.tasks.dropHeldCommands(task.taskId);
    this.stores.tasks.markEnded(task.taskId, status, this.clock.now(), error);
    this.events.ended(status);
  }

  /** Clears timers (shutdown); state stays in the database. */
  stop(): void {
    for (const away of this.absent.values()) this.clock.clearTimeout(away.timer);
    this.absent.clear();
  }
}
