/**
 * Setting up one run of a scenario in one mode: a fresh sim server, and in
 * relay mode a fresh relay process (new database) linked to it. Direct mode
 * starts no relay at all, so nothing idles beside the load.
 */
import { BenchServer } from "./bench-server.ts";
import type { LoadProcess } from "./load-client.ts";
import type { Tuning } from "./relay-env.ts";
import { type RelayProcess, spawnRelay } from "./relay-process.ts";
import { API_KEY, type BenchOptions, type Mode, type RelayRecord } from "./types.ts";

export interface BenchContext {
  readonly opts: BenchOptions;
  /** Every relay started during the run: its start time and environment. */
  readonly relays: RelayRecord[];
  log(message: string): void;
}

/**
 * Sockets a load process opens and authenticates at once: below the relay's
 * default 32 awaiting authenticate per address, so that scenarios whose point
 * is not admission run with the default admission limits.
 */
export const CONNECT_CONCURRENCY = 16;

/** Starts a relay for a scenario and records what it ran with. */
export async function startRelay(
  ctx: BenchContext,
  serverUrl: string,
  label: string,
  tunings: readonly Tuning[] = [],
): Promise<RelayProcess> {
  const relay = await spawnRelay({
    serverUrl,
    apiKey: API_KEY,
    tunings,
    extra: ctx.opts.relayEnv,
    cpuProfDir: ctx.opts.cpuProfDir,
    binary: ctx.opts.relayBinary,
    label,
  });
  ctx.relays.push({ label, startMs: relay.startMs, env: relay.env, reasons: relay.reasons });
  return relay;
}

export interface RunSetup extends AsyncDisposable {
  readonly server: BenchServer;
  readonly relay: RelayProcess | null;
  /** Where daemons connect: the relay, or the server itself. */
  readonly daemonUrl: string;
  /** Connection ids to spawn on: the relay's, or (direct) those of the first `daemons`. */
  targets(daemons: number, timeoutMs?: number): Promise<string[]>;
}

export async function setUp(
  ctx: BenchContext,
  mode: Mode,
  label: string,
  tunings: readonly Tuning[] = [],
): Promise<RunSetup> {
  const server = new BenchServer();
  let relay: RelayProcess | null = null;
  try {
    if (mode === "relay") {
      relay = await startRelay(ctx, server.url, label, tunings);
      await server.relayConnection();
    }
  } catch (error) {
    await relay?.stop();
    await server.stop();
    throw error;
  }
  const live = relay;
  return {
    server,
    relay: live,
    daemonUrl: live?.daemonUrl ?? server.url,
    async targets(daemons, timeoutMs = 30_000) {
      if (live) return [(await server.relayConnection()).connId];
      return (await server.connections(daemons, timeoutMs)).map((c) => c.connId);
    },
    async [Symbol.asyncDispose]() {
      await live?.stop();
      await server.stop();
    },
  };
}

export interface Paired<T> {
  direct: T;
  relay: T;
  /** The key figure of every run, in run order, for the spread note. */
  directKeys: number[];
  relayKeys: number[];
}

/**
 * Runs direct then relay `opts.repeat` times, interleaved so a burst of
 * outside load hits both modes alike, and keeps each mode's median run by
 * `key` (a whole run, so its figures stay consistent with one another).
 */
export async function pairedRuns<T>(
  ctx: BenchContext,
  run: (mode: Mode) => Promise<T>,
  key: (run: T) => number,
): Promise<Paired<T>> {
  const direct: T[] = [];
  const relay: T[] = [];
  for (let i = 0; i < ctx.opts.repeat; i++) {
    direct.push(await run("direct"));
    relay.push(await run("relay"));
  }
  return {
    direct: medianBy(direct, key),
    relay: medianBy(relay, key),
    directKeys: direct.map(key),
    relayKeys: relay.map(key),
  };
}

function medianBy<T>(runs: readonly T[], key: (run: T) => number): T {
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)] as T;
}

/** "direct 199,000–286,000, relay 70,000–184,000 frames/s over 3 runs" (empty for one run). */
export function spreadNote(what: string, unit: string, p: Paired<unknown>): string[] {
  if (p.directKeys.length < 2) return [];
  const range = (xs: number[]) => {
    const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
    return `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
  };
  return [
    `${what} over ${p.directKeys.length} runs: direct ${range(p.directKeys)}, relay ${range(p.relayKeys)} ${unit} (median run shown)`,
  ];
}

/**
 * Connects `k` daemons of capacity 1 and has the server spawn one task for
 * each (through the relay, which dispatches one per daemon): the start of
 * the stream and drain scenarios, whose frames must belong to a held task.
 */
export async function daemonsWithOneTask(
  run: RunSetup,
  load: LoadProcess,
  k: number,
  label: string,
): Promise<void> {
  const conn = await load.connect({
    url: run.daemonUrl,
    apiKey: API_KEY,
    count: k,
    capacity: 1,
    prefix: label,
    concurrency: CONNECT_CONCURRENCY,
    autoComplete: false,
    timeoutMs: 15_000,
  });
  if (conn.failed > 0) {
    throw new Error(`${conn.failed} daemons failed to connect: ${conn.firstError}`);
  }
  const targets = await run.targets(k);
  for (let i = 0; i < k; i++) {
    run.server.sim.spawnTask(`${label}-${i}`, label, {}, targets[i % targets.length]);
  }
  const ready = await load.awaitTasks({ timeoutMs: 10_000 });
  if (ready.missing > 0) throw new Error(`${ready.missing} daemons never received their task`);
}
