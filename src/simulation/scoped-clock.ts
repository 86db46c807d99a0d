/**
 * One relay process's view of the simulated clock. A crash kills the process
 * and every timer it had armed: the shared ManualClock keeps running for the
 * daemons and the server, but the dead core's timers must never fire into
 * objects the simulation has thrown away.
 */
import type { Clock, TimerHandle } from "../core/clock.ts";
import type { ManualClock } from "../core/manual-clock.ts";

export class ScopedClock implements Clock {
  private readonly live = new Set<TimerHandle>();
  private dead = false;

  constructor(private readonly clock: ManualClock) {}

  now(): number {
    return this.clock.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    if (this.dead) return -1;
    const handle: TimerHandle = this.clock.setTimeout(() => {
      this.live.delete(handle);
      if (!this.dead) fn();
    }, ms);
    this.live.add(handle);
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.live.delete(handle);
    this.clock.clearTimeout(handle);
  }

  /** The process died: its timers go with it. */
  kill(): void {
    this.dead = true;
    for (const handle of this.live) this.clock.clearTimeout(handle);
    this.live.clear();
  }
}
