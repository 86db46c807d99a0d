/**
 * Each daemon's budgets (docs/protocol.md "Rate limit: slow down, never
 * drop"): frames a second and bytes a second, each a token bucket. A daemon
 * over either is slowed, never dropped: its socket is not read until both
 * buckets hold enough again (TCP pushes back on the daemon), and every frame
 * it sent is still handled, in order. So a flood of many small frames and a
 * flood of few large ones (whose parsing is what costs the relay's CPU) both
 * slow only their sender. Child relays have no budget: their daemons have
 * one, at the child.
 */
import type { Clock } from "./clock.ts";
import type { Daemon } from "./daemon-registry.ts";
import type { EventLog } from "./ports.ts";
import { TokenBucket } from "./rate-limit.ts";
import type { RelayStats } from "./stats.ts";

/** A throttling that starts this soon after the last one ended is the same episode (one log line). */
const THROTTLE_EPISODE_GAP_MS = 1000;

export interface ThrottleOptions {
  /** Frames a second per daemon (the frame bucket itself is made at admission). */
  daemonRate: number;
  /** Characters of frame text a second per daemon, and the burst above it; absent: no byte budget. */
  daemonByteRate?: number;
  daemonByteBurst?: number;
}

export class DaemonThrottle {
  /** The byte bucket of each daemon that has a budget (its frame bucket is `Daemon.limiter`). */
  private readonly bytes = new WeakMap<Daemon, TokenBucket>();

  constructor(
    private readonly opts: ThrottleOptions,
    private readonly clock: Clock,
    private readonly log: EventLog,
    private readonly stats: Pick<RelayStats, "throttleEpisodes" | "throttledNow">,
    /** Reading may have to stop or resume (Relay.updateReading decides). */
    private readonly changed: (daemon: Daemon) => void,
  ) {}

  /** A daemon was admitted: its byte bucket starts full. Child relays (no frame bucket) get none. */
  admitted(daemon: Daemon): void {
    const rate = this.opts.daemonByteRate;
    if (daemon.limiter === null || rate === undefined) return;
    const burst = this.opts.daemonByteBurst ?? 2 * rate;
    this.bytes.set(daemon, new TokenBucket(rate, burst, this.clock.now()));
  }

  /** Counts a frame of `chars` characters read from `daemon`; over a budget, reading stops. */
  frame(daemon: Daemon, chars: number, now: number): void {
    if (daemon.limiter === null) return;
    const overFrames = daemon.limiter.take(now);
    const overBytes = this.bytes.get(daemon)?.take(now, chars) ?? false;
    if ((overFrames || overBytes) && daemon.throttle === null) this.start(daemon, now, overBytes);
  }

  /** The connection ends (or the relay stops): forget its throttle. Idempotent. */
  end(daemon: Daemon): void {
    if (daemon.throttle === null) return;
    this.clock.clearTimeout(daemon.throttle.timer);
    daemon.throttle = null;
    daemon.lastThrottleEnd = this.clock.now();
    this.stats.throttledNow -= 1;
  }

  /** Milliseconds until both buckets hold enough to read again (0: now). */
  private resumeIn(daemon: Daemon, now: number): number {
    const frames = daemon.limiter?.resumeIn(now) ?? 0;
    return Math.max(frames, this.bytes.get(daemon)?.resumeIn(now) ?? 0);
  }

  private start(daemon: Daemon, now: number, overBytes: boolean): void {
    daemon.throttle = {
      timer: this.clock.setTimeout(() => this.check(daemon), this.resumeIn(daemon, now)),
    };
    this.stats.throttledNow += 1;
    if (now - daemon.lastThrottleEnd > THROTTLE_EPISODE_GAP_MS) {
      this.stats.throttleEpisodes += 1;
      const budget = overBytes
        ? `${this.opts.daemonByteRate} bytes/s`
        : `${this.opts.daemonRate} frames/s`;
      this.log.connection(
        "daemon_throttled",
        `Daemon ${daemon.hostname} (${daemon.daemonId}) is over ${budget}: reading it more slowly (nothing is dropped)`,
        "warn",
      );
    }
    this.changed(daemon);
  }

  /** The throttle's timer: frames read meanwhile may have deepened the debt. */
  private check(daemon: Daemon): void {
    if (daemon.throttle === null) return;
    const wait = this.resumeIn(daemon, this.clock.now());
    if (wait > 0) {
      daemon.throttle.timer = this.clock.setTimeout(() => this.check(daemon), wait);
      return;
    }
    this.end(daemon);
    this.changed(daemon);
  }
}
