/**
 * The demo: the relay, a simulated Makima server and a few simulated daemons
 * in one process. The server spawns tasks at a steady rate, the daemons run
 * them for a random while, streaming output, and one daemon now and then
 * drops and comes back with the same machineId within the grace period.
 */
import { randomUUID } from "node:crypto";
import type { Config } from "../config/config.ts";
import { normaliseServerUrl } from "../protocol/url.ts";
import { type RelayServer, type RelayServerOverrides, startRelayServer } from "../relay-server.ts";
import { type SimDaemon, type SimServer, startSimServer } from "../sim/index.ts";
import { type DaemonPlan, startDemoDaemons } from "./daemons.ts";
import { DEMO_DEFAULTS } from "./defaults.ts";

export { DEMO_DEFAULTS };

export interface DemoOptions {
  /** The relay's config; its upstream URL and key are replaced by the sim server's. */
  config: Config;
  /** Tasks spawned per second; 0 spawns none (tests spawn their own). */
  ratePerSec?: number;
  /** One daemon per entry, with that capacity. */
  capacities?: number[];
  /** A task runs for a random time in [min, max] ms. */
  runMs?: [min: number, max: number];
  outputLines?: number;
  failRate?: number;
  /** A daemon drops every [min, max] ms; null never. */
  flapEveryMs?: [min: number, max: number] | null;
  daemonHeartbeatMs?: number;
  rng?: () => number;
  overrides?: RelayServerOverrides;
}

export interface Demo {
  readonly relay: RelayServer;
  readonly server: SimServer;
  /** The daemons' current connections (a dropped daemon's replacement appears here). */
  readonly daemons: readonly SimDaemon[];
  readonly urls: { dashboard: string; docs: string; status: string };
  /**
   * Where your own daemon (a real `makima daemon`, wscat, the `ws` package)
   * attaches to get tasks like the simulated ones: the daemon URL, and the
   * demo's own daemon key, or null when MAKIMA_RELAY_DAEMON_KEYS was given
   * (then any of those keys works, and the demo does not print them).
   */
  readonly attach: { url: string; key: string | null };
  stop(): Promise<void>;
}

/** How the simulated daemons connect and behave: the options, else the demo's defaults. */
function daemonPlan(
  opts: DemoOptions,
  relay: RelayServer,
  apiKey: string,
  rng: () => number,
): DaemonPlan {
  const [minRun, maxRun] = opts.runMs ?? DEMO_DEFAULTS.runMs;
  return {
    url: relay.url,
    apiKey,
    capacities: opts.capacities ?? [...DEMO_DEFAULTS.capacities],
    behaviour: {
      runMs: () => minRun + rng() * (maxRun - minRun),
      outputLines: opts.outputLines ?? DEMO_DEFAULTS.outputLines,
      failRate: opts.failRate ?? DEMO_DEFAULTS.failRate,
      rng,
    },
    heartbeatMs: opts.daemonHeartbeatMs ?? DEMO_DEFAULTS.daemonHeartbeatMs,
    flapEveryMs: opts.flapEveryMs === undefined ? DEMO_DEFAULTS.flapEveryMs : opts.flapEveryMs,
    // Back well within the grace period, so the daemon keeps its tasks.
    maxAwayMs: Math.min(3000, opts.config.graceMs / 2),
    rng,
    onError: (error) => relay.log.log("warn", "demo_daemon_error", { error: String(error) }),
  };
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const rng = opts.rng ?? Math.random;
  const apiKey = `demo-${randomUUID()}`;
  // A key to show, so that a user can attach a daemon of their own; never the upstream key.
  const attachKey = opts.config.daemonKeys.length === 0 ? `demo-daemon-${randomUUID()}` : null;
  const server = startSimServer({ apiKeys: [apiKey] });
  const upstream = normaliseServerUrl(server.url);
  if (!upstream.ok) throw new Error(`sim server URL ${server.url}: ${upstream.error}`);
  let relay: RelayServer;
  try {
    relay = await startRelayServer(
      {
        ...opts.config,
        serverUrl: upstream.value,
        apiKey,
        daemonKeys: attachKey ? [attachKey] : opts.config.daemonKeys,
      },
      opts.overrides,
    );
  } catch (err) {
    await server.stop();
    throw err;
  }
  const daemons = await startDemoDaemons(daemonPlan(opts, relay, apiKey, rng)).catch(
    async (err) => {
      await relay.stop();
      await server.stop();
      throw err;
    },
  );
  const rate = opts.ratePerSec ?? DEMO_DEFAULTS.ratePerSec;
  if (rate > 0) server.startSpawning({ ratePerSec: rate, taskName: "demo task" });

  let stopping: Promise<void> | null = null;
  return {
    relay,
    server,
    get daemons() {
      return daemons.current;
    },
    urls: {
      dashboard: `${relay.url}/dashboard`,
      docs: `${relay.url}/swagger`,
      status: `${relay.url}/status`,
    },
    attach: { url: `${relay.url.replace(/^http/, "ws")}/ws/daemon`, key: attachKey },
    stop() {
      stopping ??= (async () => {
        server.stopSpawning();
        daemons.stopFlapping();
        // The relay first, so that it sees its daemons go as a shutdown (1001), not as losses.
        await relay.stop();
        await daemons.closeAll();
        await server.stop();
      })();
      return stopping;
    },
  };
}
