import type { TaskStatus } from "./ports.ts";

/** In-memory counters the core keeps for /status and /metrics. */
export class RelayStats {
  framesFromDaemons = 0;
  bytesFromDaemons = 0;
  framesFromServer = 0;
  bytesFromServer = 0;
  dispatchedTotal = 0;
  rateLimitedFrames = 0;
  /** Spawn received → written to a daemon, in ms, for the latest dispatches. */
  readonly dispatchLatencies: number[] = [];
  readonly endedByStatus: Partial<Record<TaskStatus, number>> = {};

  frameFromDaemon(bytes: number): void {
    this.framesFromDaemons += 1;
    this.bytesFromDaemons += bytes;
  }

  frameFromServer(bytes: number): void {
    this.framesFromServer += 1;
    this.bytesFromServer += bytes;
  }

  dispatched(latencyMs: number): void {
    this.dispatchedTotal += 1;
    this.dispatchLatencies.push(latencyMs);
    if (this.dispatchLatencies.length > 1024) this.dispatchLatencies.splice(0, 512);
  }

  ended(status: TaskStatus): void {
    this.endedByStatus[status] = (this.endedByStatus[status] ?? 0) + 1;
  }

  get lostTasks(): number {
    return this.endedByStatus.lost ?? 0;
  }
}
