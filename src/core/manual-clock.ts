import type { Clock, TimerHandle } from "./clock.ts";

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that only moves when told to: for unit tests of timers and backoff. */
export class ManualClock implements Clock {
  private pending = new Map<number, Pending>();
  private seq = 0;

  constructor(private current = 1_700_000_000_000) {}

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.pending.set(id, { at: this.current + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.pending.delete(handle as number);
  }

  /** Moves time forward, firing due timers in order (including ones they set). */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let next: [number, Pending] | undefined;
      for (const entry of this.pending) {
        if (entry[1].at > target) continue;
        if (
          !next ||
          entry[1].at < next[1].at ||
          (entry[1].at === next[1].at && entry[1].seq < next[1].seq)
        ) {
          next = entry;
        }
      }
      if (!next) break;
      this.pending.delete(next[0]);
      this.current = next[1].at;
      next[1].fn();
    }
    this.current = target;
  }

  get timerCount(): number {
    return this.pending.size;
  }
}
