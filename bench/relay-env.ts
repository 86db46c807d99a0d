/**
 * The environment of the relay under test, built from nothing: PATH, HOME
 * and TMPDIR from the bench's own environment, where the relay listens and
 * stores (placement, not tuning), and the settings a scenario needs, each
 * with its reason. Nothing else of the caller's shell reaches the relay, so a
 * MAKIMA_RELAY_* left exported in a terminal cannot tune a run unseen; a
 * deliberate non-default run goes through `--relay-env`, and the report
 * labels it.
 */
import { OPTIONS } from "../src/config/options.ts";

/** Settings a scenario needs beyond the defaults, and why its point needs them. */
export interface Tuning {
  env: Record<string, string>;
  why: string;
}

/** Where the relay listens and keeps its database: per run, never a tuning. */
export const PLACEMENT = new Set([
  "MAKIMA_SERVER_URL",
  "MAKIMA_API_KEY",
  "MAKIMA_RELAY_HOST",
  "MAKIMA_RELAY_PORT",
  "MAKIMA_RELAY_DB",
]);

export interface RelayEnvInput {
  serverUrl: string;
  apiKey: string;
  port: number;
  dbPath: string;
  /** Fallback HOME (the run's temp directory) when the bench has none. */
  home: string;
  tmpDir: string;
  /** The scenario's settings (see Tuning), then `--relay-env`, which wins. */
  tunings?: readonly Tuning[];
  extra?: Record<string, string>;
  /** Profile the relay (BUN_OPTIONS=--cpu-prof) into this directory. */
  cpuProfDir?: string | undefined;
}

/** The relay's whole environment; `parent` is read for PATH and HOME only. */
export function relayEnv(
  input: RelayEnvInput,
  parent: Record<string, string | undefined> = process.env,
): Record<string, string> {
  const tuned = Object.assign({}, ...(input.tunings ?? []).map((t) => t.env), input.extra);
  return {
    PATH: parent.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: parent.HOME ?? input.home,
    TMPDIR: input.tmpDir,
    MAKIMA_SERVER_URL: input.serverUrl,
    MAKIMA_API_KEY: input.apiKey,
    MAKIMA_RELAY_HOST: "127.0.0.1",
    MAKIMA_RELAY_PORT: String(input.port),
    MAKIMA_RELAY_DB: input.dbPath,
    ...tuned,
    ...(input.cpuProfDir
      ? { BUN_OPTIONS: `--cpu-prof --cpu-prof-md --cpu-prof-dir=${input.cpuProfDir}` }
      : {}),
  };
}

const SECRETS = new Set(OPTIONS.filter((o) => o.secret).map((o) => o.env));
const SECRET_LIKE = /KEY|TOKEN|SECRET|PASSWORD|PROXY/;

/** The MAKIMA_* part of an environment, secrets as `***`: what the results file records. */
export function maskedRelayEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!name.startsWith("MAKIMA_") && name !== "BUN_OPTIONS") continue;
    out[name] = SECRETS.has(name) || SECRET_LIKE.test(name) ? "***" : value;
  }
  return out;
}

/** The settings that differ from the relay's defaults (placement aside). */
export function nonDefaults(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      ([name]) => (name.startsWith("MAKIMA_") || name === "BUN_OPTIONS") && !PLACEMENT.has(name),
    ),
  );
}

/**
 * Every load daemon sends from one process at rates a real daemon would not
 * keep up: the default limit (1000 frames/s, 2 MiB/s per daemon) would
 * measure the limiter instead of the relay. The limiter still runs on every
 * frame, so its cost stays in the figures.
 */
export const LIFT_DAEMON_LIMITS: Tuning = {
  env: {
    MAKIMA_RELAY_DAEMON_RATE: "100000000",
    MAKIMA_RELAY_DAEMON_BURST: "100000000",
    MAKIMA_RELAY_DAEMON_BYTE_RATE: "1073741824",
  },
  why: "per-daemon rate limit lifted (default 1000 frames/s, 2 MiB/s per daemon): the point is the relay's own capacity, not the limiter's (which still runs on every frame)",
};

/** The 32 a real fleet never reaches from one address, and the 256 sockets awaiting auth. */
export function manyFromOneAddress(daemons: number): Tuning {
  return {
    env: {
      MAKIMA_RELAY_MAX_UNAUTHENTICATED: String(daemons + 1024),
      MAKIMA_RELAY_MAX_UNAUTHENTICATED_PER_ADDRESS: String(daemons + 1024),
    },
    why: "admission limits raised: every load daemon connects from 127.0.0.1, many at once (defaults: 256 sockets awaiting authenticate, 32 per address)",
  };
}
