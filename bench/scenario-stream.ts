/**
 * stream: K daemons each send taskOutput frames of S bytes on their one task.
 * "blast" writes M frames per daemon as fast as the sockets drain
 * (throughput); "paced" then writes at half the relay's blast rate for the
 * duration (latency without queueing); "blast16k" is the blast with 16 KiB
 * frames. Each runs direct, then through the relay.
 *
 * Equal work in both modes, so that the ratio compares the path and nothing
 * else: the same K daemons (one load process, the same in-flight window of
 * `--window-kb` per socket), one task each spawned by the same server, the
 * same M frames of the same S bytes written by the same load code, and every
 * frame delivered end to end to the same simulated server and checked by the
 * same OutputCollector (count, per-task order, latency). Direct means the
 * daemons connect to the simulated server themselves, without a relay; the
 * only difference is the relay process in between.
 */
import { LoadProcess } from "./load-client.ts";
import type { StreamResult } from "./load-protocol.ts";
import { Meters, type RunCost } from "./meters.ts";
import { OutputCollector } from "./output-collector.ts";
import { LIFT_DAEMON_LIMITS } from "./relay-env.ts";
import {
  type BenchContext,
  daemonsWithOneTask,
  type Paired,
  pairedRuns,
  setUp,
  spreadNote,
} from "./run-kit.ts";
import type { LatencySummary } from "./stats.ts";
import { type Figure, figure, type Mode, type ScenarioReport, type Target } from "./types.ts";

type Variant = "blast" | "paced" | "blast16k";

/** The large-frame blast's frame size. */
const BIG_FRAME = 16 * 1024;
const TARGET_CPU_US_256 = 3;

export interface StreamRun {
  sent: number;
  received: number;
  lost: number;
  disordered: number;
  framesPerSec: number;
  mbPerSec: number;
  latencyMs: LatencySummary;
  relayCpuUsPerFrame: number | null;
  cost: RunCost;
  send: StreamResult;
  loadErrors: Record<string, number>;
}

const SETTLE_IDLE_MS = 3_000;
/** Floor on the blast rate used to bound its run time. */
const SLOWEST_BLAST_FPS = 2_000;

async function runStream(
  ctx: BenchContext,
  mode: Mode,
  variant: Variant,
  framesPerDaemon: number,
  rate: number,
): Promise<StreamRun> {
  const { k, windowBytes } = ctx.opts;
  const s = variant === "blast16k" ? BIG_FRAME : ctx.opts.s;
  await using run = await setUp(ctx, mode, `stream-${variant}`, [LIFT_DAEMON_LIMITS]);
  await using load = new LoadProcess(`stream-${variant}-${mode}`);
  await daemonsWithOneTask(run, load, k, `stream-${mode}`);

  const expected = k * framesPerDaemon;
  const timeoutMs =
    variant === "paced"
      ? ctx.opts.durationMs * 3 + 10_000
      : Math.min(600_000, (expected / SLOWEST_BLAST_FPS) * 1000 + 10_000);
  const collector = new OutputCollector(run.server.sim);
  const meters = new Meters(run.relay, [load.pid]);
  const send = await load.stream({
    frames: framesPerDaemon,
    bytes: s,
    mode: variant === "paced" ? "paced" : "blast",
    rate,
    windowBytes,
    timeoutMs,
  });
  await collector.settle(send.sent, SETTLE_IDLE_MS, timeoutMs);
  const cost = meters.stop();
  collector.stop();
  const stats = await load.stats();
  ctx.log(
    `  ${variant} ${mode}: ${Math.round(collector.framesPerSec)} frames/s, p50 ${collector.latency.summary().p50.toFixed(3)} ms`,
  );
  return {
    sent: send.sent,
    received: collector.received,
    lost: send.sent - collector.received,
    disordered: collector.disordered,
    framesPerSec: collector.framesPerSec,
    mbPerSec: collector.megabytesPerSec,
    latencyMs: collector.latency.summary(),
    relayCpuUsPerFrame:
      cost.relayCpuMs === null ? null : (cost.relayCpuMs * 1000) / Math.max(1, collector.received),
    cost,
    send,
    loadErrors: stats.errors,
  };
}

export async function streamScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, "seconds">> {
  const { k, m, s, m16k, durationMs } = ctx.opts;
  ctx.log(`stream blast: ${k} daemons × ${m} frames × ${s} B`);
  const blast = await pairedRuns(
    ctx,
    (mode) => runStream(ctx, mode, "blast", m, 0),
    (r) => r.framesPerSec,
  );
  const rate = ctx.opts.pacedRate ?? Math.max(100, Math.floor(blast.relay.framesPerSec / 2));
  const pacedFrames = Math.max(1, Math.ceil((rate * durationMs) / 1000 / k));
  ctx.log(`stream paced: ${rate} frames/s for ${durationMs} ms`);
  const paced = await pairedRuns(
    ctx,
    (mode) => runStream(ctx, mode, "paced", pacedFrames, rate),
    (r) => r.latencyMs.p50,
  );
  ctx.log(`stream blast, 16 KiB frames: ${k} daemons × ${m16k} frames`);
  const big = await pairedRuns(
    ctx,
    (mode) => runStream(ctx, mode, "blast16k", m16k, 0),
    (r) => r.framesPerSec,
  );
  const us = (p: Paired<StreamRun>) => ({
    ...p,
    directKeys: p.directKeys.map((ms) => ms * 1000),
    relayKeys: p.relayKeys.map((ms) => ms * 1000),
  });
  return {
    name: "stream",
    title: `stream (K=${k} daemons, M=${m} frames each, S=${s} B; paced at ${rate} frames/s${ctx.opts.pacedRate === null ? ", half the relay's blast rate" : ""}; ${m16k} frames of 16 KiB each)`,
    figures: [...blastFigures(blast, s), ...pacedFigures(paced), ...bigFigures(big)],
    notes: [
      ...spreadNote("blast frames/s", "frames/s", blast),
      ...spreadNote("paced p50 latency (µs)", "µs", us(paced)),
      ...spreadNote("16 KiB blast frames/s", "frames/s", big),
    ],
    detail: { pacedRate: rate, blast, paced, blast16k: big },
  };
}

const both =
  (p: Paired<StreamRun>) =>
  (f: (r: StreamRun) => number): [number, number] => [f(p.direct), f(p.relay)];

function intact(r: StreamRun): Target {
  return { text: "0 lost, 0 reordered", met: r.lost === 0 && r.disordered === 0 };
}

function blastFigures(blast: Paired<StreamRun>, s: number): Figure[] {
  const b = both(blast);
  const { direct, relay } = blast;
  const ratio = relay.framesPerSec / Math.max(1, direct.framesPerSec);
  const cpu = relay.relayCpuUsPerFrame ?? Number.NaN;
  return [
    figure("blast: frames/s at the server", "frames/s", ...b((r) => r.framesPerSec), {
      text: "≥ 0.95× direct",
      met: ratio >= 0.95,
    }),
    figure("blast: throughput", "MB/s", ...b((r) => r.mbPerSec)),
    figure("blast: latency p50", "ms", ...b((r) => r.latencyMs.p50)),
    figure("blast: latency p99", "ms", ...b((r) => r.latencyMs.p99)),
    figure("blast: latency max", "ms", ...b((r) => r.latencyMs.max)),
    figure(
      "blast: frames lost + reordered",
      "frames",
      ...b((r) => r.lost + r.disordered),
      intact(relay),
    ),
    // The figure that travels between machines: relay CPU time, not wall time.
    figure(
      `blast: relay CPU per ${s} B frame`,
      "µs",
      null,
      cpu,
      s === 256 ? { text: `≤ ${TARGET_CPU_US_256} µs`, met: cpu <= TARGET_CPU_US_256 } : null,
    ),
    figure("blast: relay RSS peak", "MB", null, relay.cost.relayRssPeakMB),
    figure(
      "blast: peak outbox backlog (spill to SQLite)",
      "frames",
      null,
      relay.cost.relayOutboxPeak,
    ),
  ];
}

function pacedFigures(paced: Paired<StreamRun>): Figure[] {
  const p = both(paced);
  const { direct, relay } = paced;
  const addedP50 = (relay.latencyMs.p50 - direct.latencyMs.p50) * 1000;
  const addedP99 = (relay.latencyMs.p99 - direct.latencyMs.p99) * 1000;
  return [
    figure("paced: frames/s at the server", "frames/s", ...p((r) => r.framesPerSec)),
    figure("paced: latency p50", "ms", ...p((r) => r.latencyMs.p50)),
    figure("paced: latency p99", "ms", ...p((r) => r.latencyMs.p99)),
    figure("paced: latency max", "ms", ...p((r) => r.latencyMs.max)),
    figure("paced: added latency p50 (relay − direct)", "µs", null, addedP50, {
      text: "≤ 100 µs",
      met: addedP50 <= 100,
    }),
    figure("paced: added latency p99 (relay − direct)", "µs", null, addedP99, {
      text: "≤ 1,000 µs",
      met: addedP99 <= 1000,
    }),
    figure(
      "paced: frames lost + reordered",
      "frames",
      ...p((r) => r.lost + r.disordered),
      intact(relay),
    ),
    figure("paced: relay CPU per frame", "µs", null, relay.relayCpuUsPerFrame),
  ];
}

function bigFigures(big: Paired<StreamRun>): Figure[] {
  const g = both(big);
  const { direct, relay } = big;
  const ratio = relay.framesPerSec / Math.max(1, direct.framesPerSec);
  return [
    figure("16 KiB blast: frames/s at the server", "frames/s", ...g((r) => r.framesPerSec), {
      text: "≥ 0.8× direct",
      met: ratio >= 0.8,
    }),
    figure("16 KiB blast: throughput", "MB/s", ...g((r) => r.mbPerSec)),
    figure(
      "16 KiB blast: frames lost + reordered",
      "frames",
      ...g((r) => r.lost + r.disordered),
      intact(relay),
    ),
    figure("16 KiB blast: relay CPU per frame", "µs", null, relay.relayCpuUsPerFrame),
  ];
}
