/**
 * What a failed run hands back: the seed, the step, the invariant and the last
 * events that led there. The first violation is kept and the run stops at the
 * end of that step; recording instead of throwing keeps a check that fires
 * deep inside a relay callback from being swallowed or leaving the core half-way.
 */

export type StoreKind = "sqlite" | "memory";

export interface Violation {
  seed: number;
  stores: StoreKind;
  step: number;
  invariant: string;
  message: string;
  trace: string[];
}

const TRACE_LENGTH = 30;

export class Trace {
  private readonly ring: string[] = [];
  private next = 0;
  step = 0;
  /** Set while the simulation replays a seed with verbose tracing (every event printed). */
  echo: ((line: string) => void) | null = null;

  add(event: string): void {
    const line = `#${this.step} ${event}`;
    if (this.ring.length < TRACE_LENGTH) this.ring.push(line);
    else this.ring[this.next] = line;
    this.next = (this.next + 1) % TRACE_LENGTH;
    this.echo?.(line);
  }

  /** Oldest first. */
  lines(): string[] {
    if (this.ring.length < TRACE_LENGTH) return [...this.ring];
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }
}

/** Collects the first violation of a run. */
export class Verdict {
  violation: Violation | null = null;

  constructor(
    private readonly seed: number,
    private readonly stores: StoreKind,
    private readonly trace: Trace,
  ) {}

  get failed(): boolean {
    return this.violation !== null;
  }

  fail(invariant: string, message: string): void {
    if (this.violation) return;
    this.trace.add(`VIOLATION ${invariant}: ${message}`);
    this.violation = {
      seed: this.seed,
      stores: this.stores,
      step: this.trace.step,
      invariant,
      message,
      trace: this.trace.lines(),
    };
  }
}
