/**
 * The relay core: daemon sessions (authentication, liveness, ownership) and
 * the routing of frames between them and the server. It holds state and makes
 * decisions; sockets and storage are behind the interfaces in ports.ts.
 */
import { encodeError } from "../protocol/encode.ts";
import { CloseCode } from "../protocol/messages.ts";
import { parseDaemonFrame } from "../protocol/parse.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { Daemon } from "./daemon.ts";
import { DaemonAdmission, type Release } from "./daemon-admission.ts";
import { DaemonFrames } from "./daemon-frames.ts";
import { DaemonLiveness } from "./daemon-liveness.ts";
import { DaemonRegistry } from "./daemon-registry.ts";
import { DaemonThrottle } from "./daemon-throttle.ts";
import { Drains, type MachineDrain, type RelayDrain } from "./drains.ts";
import { HistoryPruner } from "./history-pruner.ts";
import type { DaemonConnection, EventLog, StorageStatus, Stores } from "./ports.ts";
import { ReadGate } from "./read-gate.ts";
import { ServerFrames } from "./server-frames.ts";
import { RelayStats } from "./stats.ts";
import { StorageAlarm } from "./storage-alarm.ts";
import { TaskBook, type UpstreamForwarder } from "./task-book.ts";
import { TaskTimeline } from "./task-timeline.ts";
import type { UpstreamEvent, UpstreamListener } from "./upstream.ts";

export interface RelayOptions {
  authTimeoutMs: number;
  daemonTimeoutMs: number;
  graceMs: number;
  historyKeep: number;
  /** Frames a second per daemon, and the burst above it (child relays are exempt). */
  daemonRate: number;
  daemonBurst: number;
  /** Characters of frame text a second per daemon, and the burst; absent: no byte budget. */
  daemonByteRate?: number;
  daemonByteBurst?: number;
  /** The frame limit the daemon socket server applies; announced to child relays. */
  maxFrameBytes?: number;
  maxUnauthenticated: number;
  /** Of them, from one source address; absent: no per-address limit. */
  maxUnauthenticatedPerAddress?: number;
  /**
   * Told the capacity to advertise whenever it changes (for `auto`
   * advertising): the sum of daemon capacities, or 0 while the relay drains.
   */
  onCapacityChange?: (total: number) => void;
  /** Constant-time check of a daemon's apiKey. */
  acceptKey(key: string): boolean;
  newId(): string;
}

export class Relay implements UpstreamListener {
  /** Who is connected and who holds which task: the one writer of both. */
  readonly registry = new DaemonRegistry();
  readonly stats = new RelayStats();
  readonly tasks: TaskBook;
  /** What happened to each task (GET /tasks/:taskId/events). */
  readonly timeline: TaskTimeline;
  /** Whether each daemon is read, and when it was last heard. */
  readonly liveness: DaemonLiveness;
  private readonly admission: DaemonAdmission;
  private readonly frames: DaemonFrames;
  private readonly serverFrames: ServerFrames;
  private sweepTimer: TimerHandle | null = null;
  private readonly gate = new ReadGate(() => {
    for (const d of this.registry.all()) this.liveness.update(d);
  });
  private readonly throttle: DaemonThrottle;
  private readonly alarm: StorageAlarm;
  private readonly pruner: HistoryPruner;
  private readonly drains: Drains;
  private stopped = false;

  constructor(
    private readonly opts: RelayOptions,
    private readonly stores: Stores,
    private readonly upstream: UpstreamForwarder,
    private readonly clock: Clock,
    private readonly log: EventLog,
  ) {
    this.pruner = new HistoryPruner(stores.tasks, log, opts.historyKeep);
    this.liveness = new DaemonLiveness(clock, (d) => this.shouldRead(d));
    this.timeline = new TaskTimeline({
      store: stores.taskEvents,
      tasks: stores.tasks,
      clock,
      upstreamHolding: () => upstream.holding?.() ?? false,
    });
    this.tasks = new TaskBook(
      stores,
      this.registry,
      upstream,
      clock,
      log,
      opts.graceMs,
      {
        dispatched: (ms) => this.stats.dispatched(ms),
        ended: (status) => {
          this.stats.ended(status);
          this.pruner.ended();
        },
      },
      (d, ms) => this.liveness.readSteadilyFor(d, ms),
      this.timeline,
    );
    this.admission = new DaemonAdmission(opts, stores, this.registry, clock, log, (daemon) =>
      this.admitted(daemon),
    );
    this.frames = new DaemonFrames({
      registry: this.registry,
      tasks: this.tasks,
      liveness: this.liveness,
      timeline: this.timeline,
      reply: (conn, text) => this.reply(conn, text),
      forwardUp: (type, text, critical, bytes) => this.forwardUp(type, text, critical, bytes),
      capacityChanged: () => this.capacityChanged(),
    });
    this.serverFrames = new ServerFrames({
      registry: this.registry,
      tasks: this.tasks,
      stats: this.stats,
      log,
      reply: (conn, text) => this.reply(conn, text),
    });
    this.alarm = new StorageAlarm(clock, log);
    this.drains = new Drains(stores.meta, this.registry, log);
    this.throttle = new DaemonThrottle(
      opts,
      clock,
      log,
      this.stats,
      (d) => this.liveness.update(d),
      this.timeline,
    );
  }

  start(): void {
    this.drains.restore();
    this.tasks.restore();
    this.scheduleSweep();
  }

  /**
   * Can this relay take work now? Not while it shuts down, nor while sockets
   * awaiting authentication are at their cap (new daemons would get 503).
   */
  readiness(): string[] {
    const reasons: string[] = [];
    if (this.stopped) reasons.push("shutting down");
    if (this.drains.relayDraining) reasons.push("draining");
    if (this.gate.has("storage")) reasons.push("storage");
    if (this.gate.has("outboxFull")) reasons.push("outbox full");
    if (this.registry.unauthenticatedCount >= this.opts.maxUnauthenticated)
      reasons.push("too many connections awaiting authentication");
    return reasons;
  }

  /** Shutdown: tell every daemon (1001) and stop the timers. */
  stop(): void {
    this.stopped = true;
    if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    this.tasks.stop();
    for (const conn of this.registry.unauthenticatedConnections())
      conn.close(CloseCode.goingAway, "relay shutting down");
    for (const d of this.registry.list()) {
      this.throttle.end(d);
      // Read again, so that the daemon's answer to our close frame is heard.
      this.liveness.update(d);
      this.registry.retire(d);
      d.conn.close(CloseCode.goingAway, "relay shutting down");
    }
  }

  // ---- daemon side -------------------------------------------------------

  /** Frames to daemons leave only after the writes behind them are committed (Stores.afterCommit). */
  private reply(conn: DaemonConnection, text: string): void {
    this.stores.afterCommit(() => conn.send(text));
  }

  /**
   * Why a new daemon socket from `remoteAddress` is refused (the upgrade gets
   * 503), or null when it is welcome: at a cap of sockets awaiting
   * authenticate (its address's, then the global one), or while commits fail
   * (an admission could not be kept).
   */
  connectionRefusal(remoteAddress?: string): string | null {
    if (this.gate.has("storage")) return "the relay cannot write to its database; retry later";
    return this.admission.refusal(remoteAddress);
  }

  /** An operator releases a machineId's binding to its key (DELETE /daemons/:machineId). */
  releaseBinding(machineId: string, disconnect: boolean): Release {
    return this.admission.release(machineId, disconnect);
  }

  /** The daemon keys are now `keys` (a reload): daemons whose key was revoked are closed (4401). */
  replaceKeys(keys: readonly string[]): string[] {
    return this.admission.replaceKeys(keys);
  }

  /**
   * An operator drains `machineId` (`on`) or returns it to rotation; it holds
   * whether the machine is connected or not. Written in this turn's batch
   * before the answer; lifting it dispatches queued work to it at once.
   */
  drainMachine(machineId: string, on: boolean): MachineDrain {
    const result = this.drains.machine(machineId, on);
    if (result.changed && !on) this.tasks.dispatchQueued();
    return result;
  }

  /**
   * An operator drains the whole relay (`on`) or ends it: it is not ready, and
   * advertises capacity 0 in `auto` mode. Queued tasks still go to daemons.
   */
  drainRelay(on: boolean): RelayDrain {
    const result = this.drains.setRelay(on);
    if (result.changed) this.capacityChanged();
    return result;
  }

  get draining(): boolean {
    return this.drains.relayDraining;
  }

  /**
   * Flow control from the upstream side: pause reading every daemon while the
   * server cannot keep up, resume when it has.
   */
  setInboundPaused(paused: boolean): void {
    this.gate.set("congested", paused);
  }

  /**
   * The outbox is over its limit with task results it may not drop: stop
   * reading daemons rather than let it grow, resume once it has drained.
   */
  setOutboxFull(full: boolean): void {
    this.gate.set("outboxFull", full);
  }

  /** Commits failing or healthy again: stop or resume reading daemons, and say so. */
  storageChanged(status: StorageStatus): void {
    if (!status.ok) this.stats.failedCommits += 1;
    this.alarm.update(status);
    this.gate.set("storage", !status.ok);
  }

  /** Whether a daemon's socket is read (DaemonLiveness.update applies it); always while stopping. */
  private shouldRead(d: Daemon): boolean {
    return this.stopped || (this.gate.open && !this.throttle.isThrottled(d));
  }

  daemonOpened(conn: DaemonConnection): void {
    this.admission.opened(conn);
  }

  daemonMessage(conn: DaemonConnection, text: string): void {
    const daemon = this.registry.get(conn.id);
    if (!daemon) {
      this.admission.firstFrame(conn, text);
      return;
    }
    const now = this.clock.now();
    this.liveness.heard(daemon, now);
    // Over its budget the frame is still handled; reading stops until the buckets refill.
    this.throttle.frame(daemon, text.length, now);
    this.stats.frameFromDaemon(text.length);
    const parsed = parseDaemonFrame(text);
    if (!parsed.ok) {
      this.reply(conn, encodeError("badMessage", parsed.error.message));
      return;
    }
    this.frames.handle(daemon, parsed.value, text);
  }

  /** Binary frames are not part of the protocol. */
  daemonBinary(conn: DaemonConnection): void {
    const message = "binary frames are not accepted; send JSON text frames";
    if (this.registry.get(conn.id)) this.reply(conn, encodeError("badMessage", message));
    else this.admission.reject(conn, "badMessage", message);
  }

  daemonClosed(conn: DaemonConnection, code: number, reason: string): void {
    this.admission.closed(conn);
    const daemon = this.registry.remove(conn.id);
    if (!daemon) return;
    this.throttle.end(daemon);
    this.log.connection(
      "downstream_disconnect",
      `Daemon ${daemon.hostname} (${daemon.daemonId}) disconnected: code=${code} reason=${reason || "-"}`,
    );
    if (!daemon.retired) this.tasks.detach(daemon);
    this.capacityChanged();
  }

  private lastCapacity = 0;

  private capacityChanged(): void {
    const total = this.drains.relayDraining ? 0 : this.registry.totalCapacity;
    if (total === this.lastCapacity) return;
    this.lastCapacity = total;
    this.opts.onCapacityChange?.(total);
  }

  daemonDrained(conn: DaemonConnection): void {
    const daemon = this.registry.get(conn.id);
    if (!daemon?.backpressured) return;
    this.registry.setBackpressured(daemon, false);
    this.tasks.dispatchQueued();
  }

  /** Every daemon frame for the server goes through here, so /metrics counts each once. */
  private forwardUp(type: string, text: string, critical: boolean, bytes?: number): void {
    this.upstream.forward(text, critical);
    this.stats.relayedToServer(type, text, bytes);
  }

  /** A daemon passed authentication: give it its machine's tasks and work. */
  private admitted(daemon: Daemon): void {
    this.throttle.admitted(daemon);
    this.liveness.admitted(daemon);
    this.tasks.attach(daemon);
    this.capacityChanged();
    this.tasks.dispatchQueued();
  }

  // ---- server side -------------------------------------------------------

  /** What the upstream (core/upstream.ts) tells the core. */
  upstreamEvent(event: UpstreamEvent): void {
    switch (event.kind) {
      case "frame":
        this.serverFrame(event.text);
        return;
      case "congested":
        this.setInboundPaused(event.congested);
        return;
      case "outboxFull":
        this.setOutboxFull(event.full);
        return;
    }
  }

  /** The tasks the relay's own heartbeat lists upstream. */
  heartbeatTasks(): string[] {
    return this.tasks.heartbeatTasks();
  }

  /** A frame from the server (after the upstream handshake): server-frames.ts. */
  serverFrame(text: string): void {
    this.serverFrames.handle(text);
  }

  // ---- housekeeping ------------------------------------------------------

  private scheduleSweep(): void {
    const every = Math.max(50, Math.min(1000, Math.floor(this.opts.daemonTimeoutMs / 4)));
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweep();
      this.scheduleSweep();
    }, every);
  }

  /**
   * Closes silent daemons (4408) and prunes history now and then. A daemon
   * whose socket is not being read (congestion, storage, its own throttle)
   * cannot be heard, so it is never silent: its clock restarts on resume.
   */
  sweep(): void {
    this.liveness.closeSilent(this.registry.list(), this.opts.daemonTimeoutMs, this.log);
    this.pruner.sweep();
  }
}
