/** Options, figures and scenario reports shared by the bench's modules. */

export type Mode = "direct" | "relay";

export const SCENARIOS = ["startup", "roundtrip", "stream", "dispatch", "fanin", "drain"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  quick: boolean;
  /** Daemons in the stream and dispatch scenarios. */
  k: number;
  /** Frames per daemon in the stream blast. */
  m: number;
  /** Bytes per stream frame. */
  s: number;
  /** Frames per daemon in the 16 KiB stream blast. */
  m16k: number;
  /** Tasks spawned one at a time by the unloaded round trip. */
  roundTrips: number;
  /** Tasks in flight in the dispatch scenarios. */
  n: number;
  /** Length of the paced stream and of each dispatch window, ms. */
  durationMs: number;
  /** Daemons connected in the fan-in scenario, and load processes holding them. */
  fanin: number;
  faninProcs: number;
  heartbeatMs: number;
  /** Frames queued during the outage of the drain scenario. */
  drainFrames: number;
  startRuns: number;
  /** Times each direct/relay pair runs (interleaved); the median run is reported. */
  repeat: number;
  /** Paced stream rate, frames/s; null: half the relay's blast rate. */
  pacedRate: number | null;
  /** Bytes a load daemon lets its socket buffer before it waits. */
  windowBytes: number;
  only: ReadonlySet<ScenarioName>;
  /** Output path without extension: `.json` and `.md` are written beside each other. */
  out: string;
  /** Profile each relay with `--cpu-prof` (via BUN_OPTIONS); profiles under DIR/<run>. */
  cpuProfDir: string | undefined;
  /** A prebuilt relay binary to measure instead of building dist/makima-relay. */
  relayBinary: string | undefined;
  /** `--relay-env NAME=VALUE`: settings for every relay of a deliberate non-default run. */
  relayEnv: Record<string, string>;
}

/** One relay process the run started: what it ran with, for the results file. */
export interface RelayRecord {
  label: string;
  startMs: number;
  /** Its MAKIMA_* environment, secrets masked. */
  env: Record<string, string>;
  /** Why each non-default setting is there. */
  reasons: readonly string[];
}

export interface Target {
  text: string;
  met: boolean;
}

/** One row of the report: a figure in both modes, and its ratio relay ÷ direct. */
export interface Figure {
  figure: string;
  unit: string;
  direct: number | null;
  relay: number | null;
  ratio: number | null;
  target: Target | null;
}

export interface ScenarioReport {
  name: ScenarioName;
  title: string;
  figures: Figure[];
  /** Raw numbers behind the figures, for the JSON file. */
  detail: Record<string, unknown>;
  seconds: number;
  /** Spreads over the repeats and other remarks, printed under the table. */
  notes?: string[];
  /** Every relay the scenario started, with its environment. */
  relays?: RelayRecord[];
  /** The most cores other processes kept busy during any of its runs (see meters.ts). */
  otherCoresMax?: number;
  error?: string;
}

export const API_KEY = "bench-key-0123456789";

export function figure(
  name: string,
  unit: string,
  direct: number | null,
  relay: number | null,
  target: Target | null = null,
): Figure {
  const ratio =
    direct !== null && relay !== null && direct !== 0 && Number.isFinite(direct)
      ? relay / direct
      : null;
  return { figure: name, unit, direct, relay, ratio, target };
}
