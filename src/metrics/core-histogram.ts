/**
 * A prom-client Histogram whose buckets live in the core (a LatencyHistogram
 * the relay fills without allocating) and are read at scrape time. prom-client
 * has no public way to set bucket counts, so this overrides the two methods its
 * Registry reads: `get()` (JSON) and `getForPromString()` (text format; see
 * prom-client 15 lib/registry.js). tests/metrics/core-histogram.test.ts pins
 * the output, so a prom-client upgrade that changes this contract fails there.
 */
import { Histogram, type Registry } from "prom-client";
import type { LatencyHistogram } from "../core/stats.ts";

type HistogramSnapshot = Awaited<ReturnType<Histogram["get"]>>;

export interface CoreHistogramOptions {
  name: string;
  help: string;
  registry: Registry;
  source: LatencyHistogram;
}

export class CoreHistogram extends Histogram {
  readonly #source: LatencyHistogram;
  readonly #name: string;
  readonly #help: string;

  constructor(opts: CoreHistogramOptions) {
    super({
      name: opts.name,
      help: opts.help,
      registers: [opts.registry],
      buckets: [...opts.source.bounds],
    });
    this.#source = opts.source;
    this.#name = opts.name;
    this.#help = opts.help;
  }

  override get(): Promise<HistogramSnapshot> {
    return Promise.resolve(this.#snapshot());
  }

  getForPromString(): Promise<HistogramSnapshot> {
    return Promise.resolve(this.#snapshot());
  }

  #snapshot(): HistogramSnapshot {
    const { bounds, counts, sum, count } = this.#source;
    const bucket = `${this.#name}_bucket`;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] =
      [];
    let cumulative = 0;
    for (let i = 0; i < bounds.length; i++) {
      cumulative += counts[i] as number;
      values.push({ labels: { le: bounds[i] as number }, value: cumulative, metricName: bucket });
    }
    values.push(
      { labels: { le: "+Inf" }, value: count, metricName: bucket },
      { labels: {}, value: sum, metricName: `${this.#name}_sum` },
      { labels: {}, value: count, metricName: `${this.#name}_count` },
    );
    // `type` is the string prom-client writes at runtime; its .d.ts declares a numeric enum.
    return {
      name: this.#name,
      help: this.#help,
      type: "histogram",
      aggregator: "sum",
      values,
    } as unknown as HistogramSnapshot;
  }
}
