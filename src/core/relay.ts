/**
 * The relay core: daemon sessions (authentication, liveness, ownership) and
 * the routing of frames between them and the server. It holds state and makes
 * decisions; sockets and storage are behind the interfaces in ports.ts.
 */
import { encodeError } from "../protocol/encode.ts";
import { CloseCode } from "../protocol/messages.ts";
import { type DaemonFrame, parseDaemonFrame, parseServerFrame } from "../protocol/parse.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { DaemonAdmission } from "./daemon-admission.ts";
import { type Daemon, DaemonRegistry } from "./daemon-registry.ts";
import type { DaemonConnection, EventLog, Stores } from "./ports.ts";
import { RelayStats } from "./stats.ts";
import { TaskBook, type UpstreamForwarder } from "./task-book.ts";

/** Ended tasks deleted per sweep at most (history retention). */
const PRUNE_STEP = 500;

export interface RelayOptions {
  authTimeoutMs: number;
  daemonTimeoutMs: number;
  graceMs: number;
  historyKeep: number;
  /** Frames a second per daemon, and the burst above it (child relays are exempt). */
  daemonRate: number;
  daemonBurst: number;
  maxUnauthenticated: number;
  /** Told the new sum of daemon capacities whenever it changes (for `auto` advertising). */
  onCapacityChange?: (total: number) => void;
  /** Constant-time check of a daemon's apiKey. */
  acceptKey(key: string): boolean;
  newId(): string;
}

export class Relay {
  readonly registry = new DaemonRegistry();
  readonly stats = new RelayStats();
  readonly tasks: TaskBook;
  private readonly admission: DaemonAdmission;
  private sweepTimer: TimerHandle | null = null;
  /** Daemon sockets are not being read while the upstream link is congested. */
  private inboundPaused = false;
  private stopped = false;
  private endedSincePrune = 0;
  private pruneBacklog = true;

  constructor(
    private readonly opts: RelayOptions,
    private readonly stores: Stores,
    private readonly upstream: UpstreamForwarder,
    private readonly clock: Clock,
    private readonly log: EventLog,
  ) {
    this.tasks = new TaskBook(stores, this.registry, upstream, clock, log, opts.graceMs, {
      dispatched: (ms) => this.stats.dispatched(ms),
      ended: (status) => {
        this.stats.ended(status);
        this.endedSincePrune += 1;
        if (this.endedSincePrune >= PRUNE_STEP) this.pruneStep();
      },
    });
    this.admission = new DaemonAdmission(
      opts,
      stores,
      this.registry,
      clock,
      log,
      (daemon, previous) => this.admitted(daemon, previous),
    );
  }

  start(): void {
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
    if (!this.canAcceptConnection()) reasons.push("too many connections awaiting authentication");
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
      d.retired = true;
      this.registry.changed(d);
      d.conn.close(CloseCode.goingAway, "relay shutting down");
    }
  }

  // ---- daemon side -------------------------------------------------------

  /** Frames to daemons leave only after the writes behind them are committed (Stores.afterCommit). */
  private reply(conn: DaemonConnection, text: string): void {
    this.stores.afterCommit(() => conn.send(text));
  }

  /** Room for one more socket awaiting authenticate? (Beyond it, upgrades get 503.) */
  canAcceptConnection(): boolean {
    return this.registry.unauthenticatedCount < this.opts.maxUnauthenticated;
  }

  /**
   * Flow control from the upstream side: pause reading every daemon while the
   * server cannot keep up, resume when it has. Liveness restarts on resume:
   * a paused daemon could not be heard.
   */
  setInboundPaused(paused: boolean): void {
    if (paused === this.inboundPaused) return;
    this.inboundPaused = paused;
    const now = this.clock.now();
    for (const d of this.registry.all()) {
      if (paused) d.conn.pause?.();
      else {
        d.lastSeen = now;
        d.conn.resume?.();
      }
    }
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
    daemon.lastSeen = now;
    if (daemon.limiter && !daemon.limiter.take(now)) {
      this.rateLimited(daemon, now);
      return;
    }
    this.stats.frameFromDaemon(text.length);
    const parsed = parseDaemonFrame(text);
    if (!parsed.ok) {
      this.reply(conn, encodeError("badMessage", parsed.error.message));
      return;
    }
    this.handleFrame(daemon, parsed.value, text);
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
    this.log.connection(
      "downstream_disconnect",
      `Daemon ${daemon.hostname} (${daemon.daemonId}) disconnected: code=${code} reason=${reason || "-"}`,
    );
    if (!daemon.retired) this.tasks.detach(daemon);
    this.capacityChanged();
  }

  private lastCapacity = 0;

  private capacityChanged(): void {
    const total = this.registry.totalCapacity;
    if (total === this.lastCapacity) return;
    this.lastCapacity = total;
    this.opts.onCapacityChange?.(total);
  }

  daemonDrained(conn: DaemonConnection): void {
    const daemon = this.registry.get(conn.id);
    if (!daemon?.backpressured) return;
    daemon.backpressured = false;
    this.registry.changed(daemon);
    this.tasks.dispatchQueued();
  }

  /** One rateLimited error a second at most: the error replies must not become a flood of their own. */
  private rateLimited(daemon: Daemon, now: number): void {
    this.stats.rateLimitedFrames += 1;
    if (now - daemon.lastRateLimitNotice < 1000) return;
    daemon.lastRateLimitNotice = now;
    this.reply(
      daemon.conn,
      encodeError(
        "rateLimited",
        `more than ${this.opts.daemonRate} frames/s; frames are being dropped`,
      ),
    );
    this.log.connection(
      "rate_limited",
      `Daemon ${daemon.hostname} (${daemon.daemonId}) exceeded the frame rate`,
      "warn",
    );
  }

  private handleFrame(daemon: Daemon, frame: DaemonFrame, text: string): void {
    switch (frame.kind) {
      case "authenticate":
        this.reply(daemon.conn, encodeError("badMessage", "already authenticated"));
        return;
      case "heartbeat":
        daemon.lastHeartbeat = this.clock.now();
        if (daemon.reconcile) this.tasks.reconcile(daemon, frame.activeTasks);
        return;
      case "capacityUpdate":
        this.registry.setCapacity(daemon, frame.capacity);
        this.capacityChanged();
        this.tasks.dispatchQueued();
        return;
      case "other":
        this.forwardUp(frame.type, text, false);
        return;
    }
    if (!this.tasks.isHeldBy(frame.taskId, daemon.machineId)) {
      this.reply(
        daemon.conn,
        encodeError("notYourTask", `task ${frame.taskId} is not dispatched to this daemon`),
      );
      return;
    }
    if (frame.kind === "taskComplete") {
      // Forward first so that the server hears of the completion before any dispatch it frees.
      this.forwardUp(frame.kind, text, true);
      this.tasks.complete(daemon, frame.taskId, frame.success, frame.error);
    } else if (frame.kind === "taskStatusChange") {
      this.tasks.reportStatus(frame.taskId, frame.newStatus);
      this.forwardUp(frame.kind, text, true);
    } else {
      this.forwardUp(frame.type, text, false);
    }
  }

  /** Every daemon frame for the server goes through here, so /metrics counts each once. */
  private forwardUp(type: string, text: string, critical: boolean): void {
    this.upstream.forward(text, critical);
    this.stats.relayedToServer(type, text);
  }

  /** A daemon passed authentication: give it its machine's tasks and work. */
  private admitted(daemon: Daemon, previous: Daemon | undefined): void {
    if (this.inboundPaused) daemon.conn.pause?.();
    this.tasks.attach(daemon, previous);
    this.capacityChanged();
    this.tasks.dispatchQueued();
  }

  // ---- server side -------------------------------------------------------

  /** A frame from the server (after the upstream handshake). */
  serverFrame(text: string): void {
    this.stats.frameFromServer(text.length);
    const parsed = parseServerFrame(text);
    if (!parsed.ok) {
      this.log.connection(
        "error",
        `Unreadable frame from the server: ${parsed.error.message}`,
        "warn",
      );
      return;
    }
    const frame = parsed.value;
    if (frame.kind !== "authenticated") {
      this.stats.relayedToDaemons(frame.kind === "spawnTask" ? frame.kind : frame.type, text);
    }
    switch (frame.kind) {
      case "spawnTask":
        this.tasks.spawn(frame.taskId, frame.taskName, text);
        return;
      case "control":
        this.tasks.control(frame.type, frame.taskId, text);
        return;
      case "authenticated":
        return;
      case "other":
        for (const d of this.registry.all()) this.reply(d.conn, text);
    }
  }

  // ---- housekeeping ------------------------------------------------------

  private scheduleSweep(): void {
    const every = Math.max(50, Math.min(1000, Math.floor(this.opts.daemonTimeoutMs / 4)));
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweep();
      this.scheduleSweep();
    }, every);
  }

  /** Closes silent daemons (4408) and prunes history now and then. */
  sweep(): void {
    const deadline = this.clock.now() - this.opts.daemonTimeoutMs;
    const silent = this.inboundPaused
      ? []
      : this.registry.list().filter((d) => d.lastSeen < deadline);
    for (const d of silent) {
      this.log.connection(
        "daemon_silent",
        `Daemon ${d.hostname} silent for over ${this.opts.daemonTimeoutMs} ms`,
        "warn",
      );
      d.conn.close(CloseCode.silent, "no heartbeat within the liveness timeout");
    }
    if (this.pruneBacklog || this.endedSincePrune > 0) this.pruneStep();
  }

  /**
   * History retention a step at a time: every PRUNE_STEP ended tasks, and at
   * each sweep when tasks ended since the last step (or a backlog remains,
   * e.g. after lowering the limit), at most twice that many of the oldest go,
   * so pruning keeps pace without ever stalling relaying on one large delete.
   */
  private pruneStep(): void {
    this.endedSincePrune = 0;
    const limit = PRUNE_STEP * 2;
    const deleted = this.stores.tasks.prune(this.opts.historyKeep, limit);
    this.pruneBacklog = deleted === limit;
    if (deleted > 0)
      this.log.log("debug", "history_pruned", { deleted, keep: this.opts.historyKeep });
  }
}
