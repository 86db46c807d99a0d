/**
 * fan-in: many daemons connected at once (split over several load
 * processes), each heartbeating; the relay's memory with all of them
 * connected, then the dispatch rate while they stay connected.
 */
import { type DispatchResult, runDispatch } from "./dispatcher.ts";
import { LoadProcess } from "./load-client.ts";
import type { LoadStats } from "./load-protocol.ts";
import { Meters, type RunCost } from "./meters.ts";
import { manyFromOneAddress } from "./relay-env.ts";
import { type BenchContext, setUp } from "./run-kit.ts";
import { API_KEY, figure, type Mode, type ScenarioReport } from "./types.ts";

const CONNECT_CONCURRENCY = 256;
/** The RSS target is about 10,000 connected daemons; smaller runs report the figure only. */
const TARGET_DAEMONS = 10_000;
const CONNECT_TIMEOUT_MS = 180_000;
/** Time for every daemon to heartbeat at least once before memory is read. */
const MAX_SETTLE_MS = 5_000;

interface FaninRun {
  connected: number;
  connectMs: number;
  relayRssIdleMB: number | null;
  relayRssConnectedMB: number | null;
  relayRssAfterDispatchMB: number | null;
  dispatch: DispatchResult;
  cost: RunCost;
  loads: LoadStats[];
  loadRssMB: number[];
}

async function runMode(ctx: BenchContext, mode: Mode): Promise<FaninRun> {
  const { fanin, faninProcs, heartbeatMs, n, durationMs } = ctx.opts;
  await using run = await setUp(ctx, mode, "fanin", [manyFromOneAddress(fanin)]);
  const mb = (bytes: number | undefined) => (bytes === undefined ? null : bytes / 2 ** 20);
  const relayRssIdleMB = mb(run.relay?.memory().rss);
  const loads = Array.from({ length: faninProcs }, (_, i) => new LoadProcess(`fanin-${mode}-${i}`));
  try {
    const started = performance.now();
    const share = (i: number) => Math.floor(fanin / faninProcs) + (i < fanin % faninProcs ? 1 : 0);
    const results = await Promise.all(
      loads.map((load, i) =>
        load.connect({
          url: run.daemonUrl,
          apiKey: API_KEY,
          count: share(i),
          capacity: 1,
          prefix: `fanin-${mode}-${i}`,
          concurrency: CONNECT_CONCURRENCY,
          autoComplete: true,
          timeoutMs: CONNECT_TIMEOUT_MS,
        }),
      ),
    );
    const connectMs = performance.now() - started;
    const connected = results.reduce((sum, r) => sum + r.connected, 0);
    if (connected < fanin) {
      const why = results.find((r) => r.firstError)?.firstError;
      throw new Error(`only ${connected} of ${fanin} daemons connected (${why})`);
    }
    ctx.log(`  ${mode}: ${connected} daemons connected in ${Math.round(connectMs)} ms`);
    await Promise.all(loads.map((load) => load.heartbeats({ everyMs: heartbeatMs })));
    await Bun.sleep(Math.min(MAX_SETTLE_MS, heartbeatMs + 200));
    const relayRssConnectedMB = mb(run.relay?.memory().rss);
    const targets = await run.targets(fanin);
    const meters = new Meters(
      run.relay,
      loads.map((l) => l.pid),
    );
    const dispatch = await runDispatch(run.server, {
      inFlight: n,
      durationMs,
      drainTimeoutMs: 15_000,
      targets,
      label: `fanin-${mode}`,
    });
    const cost = meters.stop();
    return {
      connected,
      connectMs,
      relayRssIdleMB,
      relayRssConnectedMB,
      relayRssAfterDispatchMB: mb(run.relay?.memory().rss),
      dispatch,
      cost,
      loads: await Promise.all(loads.map((l) => l.stats())),
      loadRssMB: loads.map((l) => l.memory().rss / 2 ** 20),
    };
  } finally {
    await Promise.all(loads.map((l) => l.close()));
  }
}

export async function faninScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, "seconds">> {
  const { fanin, faninProcs, heartbeatMs, n, durationMs } = ctx.opts;
  ctx.log(
    `fan-in: ${fanin} daemons over ${faninProcs} load processes, heartbeat every ${heartbeatMs} ms`,
  );
  const direct = await runMode(ctx, "direct");
  ctx.log(`  direct ${Math.round(direct.dispatch.tasksPerSec)} tasks/s`);
  const relay = await runMode(ctx, "relay");
  ctx.log(`  relay ${Math.round(relay.dispatch.tasksPerSec)} tasks/s`);
  const rss = relay.relayRssConnectedMB ?? Number.NaN;
  const both = (f: (r: FaninRun) => number) => [f(direct), f(relay)] as const;
  const cpu = relay.cost.relayCpuMs;
  return {
    name: "fanin",
    title: `fan-in (${fanin} daemons in ${faninProcs} load processes, heartbeat ${heartbeatMs} ms; N=${n} in flight for ${durationMs / 1000} s)`,
    figures: [
      figure("time to connect and authenticate all", "ms", ...both((r) => r.connectMs)),
      figure("relay RSS, no daemon", "MB", null, relay.relayRssIdleMB),
      figure(
        `relay RSS, ${fanin} daemons connected`,
        "MB",
        null,
        rss,
        fanin >= TARGET_DAEMONS ? { text: "≤ 150 MB", met: rss <= 150 } : null,
      ),
      figure("relay RSS after dispatch", "MB", null, relay.relayRssAfterDispatchMB),
      figure("tasks/s while connected", "tasks/s", ...both((r) => r.dispatch.tasksPerSec)),
      figure("tasks unfinished", "tasks", ...both((r) => r.dispatch.unfinished), {
        text: "0",
        met: relay.dispatch.unfinished === 0,
      }),
      figure("spawn → complete p50", "ms", ...both((r) => r.dispatch.latencyMs.p50)),
      figure("spawn → complete p99", "ms", ...both((r) => r.dispatch.latencyMs.p99)),
      figure(
        "relay CPU per task (incl. heartbeats)",
        "µs",
        null,
        cpu === null ? null : (cpu * 1000) / Math.max(1, relay.dispatch.completed),
      ),
      figure("relay CPU utilisation during dispatch", "cores", null, relay.cost.relayUtil),
    ],
    detail: { direct, relay },
  };
}
