/**
 * Latency samples and their summary. Exact percentiles over every sample up
 * to a cap, then reservoir sampling (Algorithm R), so a long run keeps a
 * fixed memory footprint; count and max stay exact.
 */

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

const DEFAULT_CAP = 2_000_000;

export class Samples {
  readonly #values: Float64Array;
  #stored = 0;
  #count = 0;
  #sum = 0;
  #max = 0;

  constructor(cap = DEFAULT_CAP) {
    this.#values = new Float64Array(cap);
  }

  get count(): number {
    return this.#count;
  }

  add(value: number): void {
    this.#count++;
    this.#sum += value;
    if (value > this.#max) this.#max = value;
    if (this.#stored < this.#values.length) {
      this.#values[this.#stored++] = value;
      return;
    }
    const slot = Math.floor(Math.random() * this.#count);
    if (slot < this.#values.length) this.#values[slot] = value;
  }

  summary(): LatencySummary {
    const sorted = this.#values.slice(0, this.#stored).sort();
    return {
      count: this.#count,
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: this.#max,
      mean: this.#count === 0 ? 0 : this.#sum / this.#count,
    };
  }
}

/** Nearest-rank percentile of an ascending array; 0 when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** Rounds for the report: 3 significant decimals is plenty for any figure here. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
