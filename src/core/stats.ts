import { CONTROL_COMMANDS } from "../protocol/messages.ts";
import type { TaskStatus } from "./ports.ts";

/**
 * Protocol types counted by name when relayed; any other type counts as
 * "other", so a daemon inventing types cannot grow the metric's label set.
 */
export const DAEMON_TO_SERVER_TYPES = [
  "taskComplete",
  "taskStatusChange",
  "taskOutput",
  "taskProgress",
  "other",
] as const;
export const SERVER_TO_DAEMON_TYPES = ["spawnTask", ...CONTROL_COMMANDS, "other"] as const;

export type DaemonToServerType = (typeof DAEMON_TO_SERVER_TYPES)[number];
export type ServerToDaemonType = (typeof SERVER_TO_DAEMON_TYPES)[number];

/** Frames and bytes relayed in one direction; `frames` has one key per known type. */
export interface RelayedCounts<K extends string> {
  readonly frames: Record<K, number>;
  bytes: number;
}

function relayedCounts<K extends string>(types: readonly K[]): RelayedCounts<K> {
  const frames = {} as Record<K, number>;
  for (const type of types) frames[type] = 0;
  return { frames, bytes: 0 };
}

const UP_TYPES: ReadonlySet<string> = new Set(DAEMON_TO_SERVER_TYPES);
const DOWN_TYPES: ReadonlySet<string> = new Set(SERVER_TO_DAEMON_TYPES);

/** Upper bounds (seconds) of the dispatch latency buckets: a queued task may wait minutes. */
export const DISPATCH_LATENCY_BOUNDS = [
  0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800,
] as const;
/** Upper bounds (seconds) of the frame relay latency buckets: parse, route, socket or outbox write. */
export const FRAME_LATENCY_BOUNDS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1,
] as const;

/**
 * A fixed-bucket histogram the core fills and /metrics reads at scrape time:
 * an observation is a short loop and two additions, never an allocation.
 */
export class LatencyHistogram {
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    let i = 0;
    while (i < this.bounds.length && seconds > (this.bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += seconds;
    this.count += 1;
  }
}

/** In-memory counters the core keeps for /status and /metrics. */
export class RelayStats {
  framesFromDaemons = 0;
  bytesFromDaemons = 0;
  framesFromServer = 0;
  bytesFromServer = 0;
  dispatchedTotal = 0;
  /** Throttling episodes since start (docs/protocol.md "Rate limit"). */
  throttleEpisodes = 0;
  /** Daemons whose sockets are paused by their own rate limit right now. */
  throttledNow = 0;
  /** Commit attempts that failed (docs/protocol.md "Storage failures"), since start. */
  failedCommits = 0;
  readonly endedByStatus: Partial<Record<TaskStatus, number>> = {};
  /** Daemon frames forwarded upstream (socket or outbox), by type; bytes are UTF-8. */
  readonly daemonToServer = relayedCounts(DAEMON_TO_SERVER_TYPES);
  /** Server frames routed to daemons (on receipt, once per frame), by type; bytes are UTF-8. */
  readonly serverToDaemon = relayedCounts(SERVER_TO_DAEMON_TYPES);
  /** Spawn received → written to a daemon, in seconds (clock resolution: 1 ms). */
  readonly dispatchLatency = new LatencyHistogram(DISPATCH_LATENCY_BOUNDS);
  /** Daemon frame read → handed to the upstream socket or outbox, in seconds, sampled. */
  readonly frameLatency = new LatencyHistogram(FRAME_LATENCY_BOUNDS);
  /**
   * One daemon frame in this many is timed (two `performance.now()` calls,
   * ~40 ns each in Bun 1.4, against a few µs to parse and route a frame).
   * Tests set 1 to time every frame.
   */
  frameLatencySampleEvery = 16;
  private sinceSample = 0;
  /** performance.now() when the frame being handled was read, or -1 if it is not sampled. */
  private sampleStart = -1;

  /** `now` is a monotonic clock in ms for the frame latency sample (not domain time). */
  constructor(private readonly now: () => number = () => performance.now()) {}

  frameFromDaemon(bytes: number): void {
    this.framesFromDaemons += 1;
    this.bytesFromDaemons += bytes;
    this.sinceSample += 1;
    if (this.sinceSample >= this.frameLatencySampleEvery) {
      this.sinceSample = 0;
      this.sampleStart = this.now();
    } else {
      this.sampleStart = -1;
    }
  }

  frameFromServer(bytes: number): void {
    this.framesFromServer += 1;
    this.bytesFromServer += bytes;
  }

  /** A daemon frame was handed to the upstream socket or outbox; `bytes`: its UTF-8 length if counted already. */
  relayedToServer(type: string, text: string, bytes = Buffer.byteLength(text)): void {
    const counts = this.daemonToServer;
    counts.frames[UP_TYPES.has(type) ? (type as DaemonToServerType) : "other"] += 1;
    counts.bytes += bytes;
    if (this.sampleStart >= 0) {
      this.frameLatency.observe((this.now() - this.sampleStart) / 1000);
      this.sampleStart = -1;
    }
  }

  /** A server frame is routed to daemons (dispatched, queued, held or broadcast). */
  relayedToDaemons(type: string, text: string): void {
    const counts = this.serverToDaemon;
    counts.frames[DOWN_TYPES.has(type) ? (type as ServerToDaemonType) : "other"] += 1;
    counts.bytes += Buffer.byteLength(text);
  }

  dispatched(latencyMs: number): void {
    this.dispatchedTotal += 1;
    this.dispatchLatency.observe(Math.max(0, latencyMs) / 1000);
  }

  ended(status: TaskStatus): void {
    this.endedByStatus[status] = (this.endedByStatus[status] ?? 0) + 1;
  }

  get lostTasks(): number {
    return this.endedByStatus.lost ?? 0;
  }
}
