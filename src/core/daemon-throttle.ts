/**
 * Each daemon's budgets (docs/protocol.md "Rate limit: slow down, never
 * drop"): frames a second and bytes a second, each a token bucket. A daemon
 * over either is slowed, never dropped: its socket is not read until both
 * buckets hold enough again (TCP pushes back on the daemon), and every frame
 * it sent is still handled, in order. So a flood of many small frames and a
 * flood of few large ones (whose parsing is what costs the relay's CPU) both
 * slow only their sender. Child relays have no budget: their daemons have
 * one, at the child. This module owns each daemon's buckets and throttle
 * state; the daemon record (daemon.ts) does not carry them.
 */
import type { Clock, TimerHandle } from "./clock.ts";
import type { Daemon } from "./daemon.ts";
import type { EventLog } from "./ports.ts";
import { TokenBucket } from "./rate-limit.ts";
import type { RelayStats } from "./stats.ts";
import type { TimelineEvents } from "./task-timeline.ts";

/** A throttling that starts this soon after the last one ended is the same episode (one log line). */
const THROTTLE_EPISODE_GAP_MS = 1000;

export interface ThrottleOptions {
  /** Frames a second per daemon, and the burst above it. */
  daemonRate: number;
  daemonBurst: number;
  /** Characters of frame text a second per daemon, and the burst above it; absent: no byte budget. */
  daemonByteRate?: number;
  daemonByteBurst?: number;
}

interface Budget {
  readonly frames: TokenBucket;
  /** Absent without a byte budget. */
  readonly bytes: TokenBucket | undefined;
  /** Over its rate: its socket is not read until the buckets refill (timer). */
  throttle: { timer: TimerHandle } | null;
  /** When its last throttling ended: a new one soon after is the same episode. */
  lastThrottleEnd: number;
}

export class DaemonThrottle {
  /** The budget of each daemon that has one (child relays have none). */
  private readonly budgets = new WeakMap<Daemon, Budget>();

  constructor(
    private readonly opts: ThrottleOptions,
    private readonly clock: Clock,
    private readonly log: EventLog,
    private readonly stats: Pick<RelayStats, "throttleEpisodes" | "throttledNow">,
    /** Reading may have to stop or resume (Relay.updateReading decides). */
    private readonly changed: (daemon: Daemon) => void,
    /** Each task the daemon holds hears of a throttling episode. */
    private readonly timeline?: Pick<TimelineEvents, "throttled">,
  ) {}

  /** A daemon was admitted: its buckets start full. Child relays are exempt: they get none. */
  admitted(daemon: Daemon): void {
    if (daemon.role === "relay") return;
    const now = this.clock.now();
    const rate = this.opts.daemonByteRate;
    this.budgets.set(daemon, {
      frames: new TokenBucket(this.opts.daemonRate, this.opts.daemonBurst, now),
      bytes:
        rate === undefined
          ? undefined
          : new TokenBucket(rate, this.opts.daemonByteBurst ?? 2 * rate, now),
      throttle: null,
      lastThrottleEnd: Number.NEGATIVE_INFINITY,
    });
  }

  /** Is its socket left unread until its buckets refill? */
  isThrottled(daemon: Daemon): boolean {
    return (this.budgets.get(daemon)?.throttle ?? null) !== null;
  }

  /** Counts a frame of `chars` characters read from `daemon`; over a budget, reading stops. */
  frame(daemon: Daemon, chars: number, now: number): void {
    const budget = this.budgets.get(daemon);
    if (!budget) return;
    const overFrames = budget.frames.take(now);
    const overBytes = budget.bytes?.take(now, chars) ?? false;
    if ((overFrames || overBytes) && budget.throttle === null)
      this.start(daemon, budget, now, overBytes);
  }

  /** The connection ends (or the relay stops): forget its throttle. Idempotent. */
  end(daemon: Daemon): void {
    const budget = this.budgets.get(daemon);
    if (!budget || budget.throttle === null) return;
    this.clock.clearTimeout(budget.throttle.timer);
    budget.throttle = null;
    budget.lastThrottleEnd = this.clock.now();
    this.stats.throttledNow -= 1;
  }

  /** Milliseconds until both buckets hold enough to read again (0: now). */
  private resumeIn(budget: Budget, now: number): number {
    return Math.max(budget.frames.resumeIn(now), budget.bytes?.resumeIn(now) ?? 0);
  }

  private start(daemon: Daemon, budget: Budget, now: number, overBytes: boolean): void {
    budget.throttle = {
      timer: this.clock.setTimeout(() => this.check(daemon, budget), this.resumeIn(budget, now)),
    };
    this.stats.throttledNow += 1;
    if (now - budget.lastThrottleEnd > THROTTLE_EPISODE_GAP_MS) {
      this.stats.throttleEpisodes += 1;
      const budget = overBytes
        ? `${this.opts.daemonByteRate} bytes/s`
        : `${this.opts.daemonRate} frames/s`;
      this.log.connection(
        "daemon_throttled",
        `Daemon ${daemon.hostname} (${daemon.daemonId}) is over ${budget}: reading it more slowly (nothing is dropped)`,
        "warn",
      );
      for (const id of daemon.holds) this.timeline?.throttled(id, budget);
    }
    this.changed(daemon);
  }

  /** The throttle's timer: frames read meanwhile may have deepened the debt. */
  private check(daemon: Daemon, budget: Budget): void {
    if (budget.throttle === null) return;
    const wait = this.resumeIn(budget, this.clock.now());
    if (wait > 0) {
      budget.throttle.timer = this.clock.setTimeout(() => this.check(daemon, budget), wait);
      return;
    }
    this.end(daemon);
    this.changed(daemon);
  }
}
