/**
 * stream: K daemons each send taskOutput frames of S bytes on their one task.
 * "blast" writes M frames per daemon as fast as the sockets drain
 * (throughput); "paced" then writes at half the relay's blast rate for the
 * duration (latency without queueing). Each runs direct, then through the relay.
 */
import { LoadProcess } from "./load-client.ts";
import type { StreamResult } from "./load-protocol.ts";
import { Meters, type RunCost } from "./meters.ts";
import { OutputCollector } from "./output-collector.ts";
import { type BenchContext, daemonsWithOneTask, pairedRuns, setUp, spreadNote } from "./run-kit.ts";
import type { LatencySummary } from "./stats.ts";
import { type Figure, figure, type Mode, type ScenarioReport } from "./types.ts";

type Variant = "blast" | "paced";

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
  const { k, s, windowBytes } = ctx.opts;
  await using run = await setUp(ctx, mode, `stream-${variant}`);
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
    mode: variant,
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
  const { k, m, s, durationMs } = ctx.opts;
  ctx.log(`stream blast: ${k} daemons × ${m} frames × ${s} B`);
  const blast = await pairedRuns(
    ctx,
    (mode) => runStream(ctx, mode, "blast", m, 0),
    (r) => r.framesPerSec,
  );
  const { direct: blastDirect, relay: blastRelay } = blast;
  const rate = ctx.opts.pacedRate ?? Math.max(100, Math.floor(blastRelay.framesPerSec / 2));
  const pacedFrames = Math.max(1, Math.ceil((rate * durationMs) / 1000 / k));
  ctx.log(`stream paced: ${rate} frames/s for ${durationMs} ms`);
  const paced = await pairedRuns(
    ctx,
    (mode) => runStream(ctx, mode, "paced", pacedFrames, rate),
    (r) => r.latencyMs.p50,
  );
  const { direct: pacedDirect, relay: pacedRelay } = paced;

  const b = (f: (r: StreamRun) => number) => [f(blastDirect), f(blastRelay)] as const;
  const p = (f: (r: StreamRun) => number) => [f(pacedDirect), f(pacedRelay)] as const;
  const ratio = blastRelay.framesPerSec / Math.max(1, blastDirect.framesPerSec);
  const cpu = blastRelay.relayCpuUsPerFrame ?? Number.NaN;
  const rss = blastRelay.cost.relayRssPeakMB ?? Number.NaN;
  const addedP50 = pacedRelay.latencyMs.p50 - pacedDirect.latencyMs.p50;
  const addedP99 = pacedRelay.latencyMs.p99 - pacedDirect.latencyMs.p99;
  const figures: Figure[] = [
    figure("blast: frames/s at the server", "frames/s", ...b((r) => r.framesPerSec), {
      text: "≥ 0.95× direct",
      met: ratio >= 0.95,
    }),
    figure("blast: throughput", "MB/s", ...b((r) => r.mbPerSec)),
    figure("blast: latency p50", "ms", ...b((r) => r.latencyMs.p50)),
    figure("blast: latency p99", "ms", ...b((r) => r.latencyMs.p99), {
      text: "< 50 ms",
      met: blastRelay.latencyMs.p99 < 50,
    }),
    figure("blast: latency max", "ms", ...b((r) => r.latencyMs.max)),
    figure("blast: frames lost", "frames", ...b((r) => r.lost), {
      text: "0",
      met: blastRelay.lost === 0 && blastRelay.disordered === 0,
    }),
    figure("blast: relay CPU per frame", "µs", null, cpu, { text: "≤ 5 µs", met: cpu <= 5 }),
    figure("blast: relay RSS peak", "MB", null, rss, { text: "< 150 MB", met: rss < 150 }),
    figure(
      "blast: peak outbox backlog (spill to SQLite)",
      "frames",
      null,
      blastRelay.cost.relayOutboxPeak,
    ),
    figure("paced: frames/s at the server", "frames/s", ...p((r) => r.framesPerSec)),
    figure("paced: latency p50", "ms", ...p((r) => r.latencyMs.p50)),
    figure("paced: latency p99", "ms", ...p((r) => r.latencyMs.p99)),
    figure("paced: latency max", "ms", ...p((r) => r.latencyMs.max)),
    figure("paced: added latency p50 (relay − direct)", "ms", null, addedP50, {
      text: "≤ 0.1 ms",
      met: addedP50 <= 0.1,
    }),
    figure("paced: added latency p99 (relay − direct)", "ms", null, addedP99, {
      text: "≤ 1 ms",
      met: addedP99 <= 1,
    }),
    figure("paced: frames lost", "frames", ...p((r) => r.lost), {
      text: "0",
      met: pacedRelay.lost === 0 && pacedRelay.disordered === 0,
    }),
    figure("paced: relay CPU per frame", "µs", null, pacedRelay.relayCpuUsPerFrame),
  ];
  return {
    name: "stream",
    title: `stream (K=${k} daemons, M=${m} frames each, S=${s} B; paced at ${rate} frames/s${ctx.opts.pacedRate === null ? ", half the relay's blast rate" : ""})`,
    figures,
    notes: [
      ...spreadNote("blast frames/s", "frames/s", blast),
      ...spreadNote("paced p50 latency (µs)", "µs", {
        ...paced,
        directKeys: paced.directKeys.map((ms) => ms * 1000),
        relayKeys: paced.relayKeys.map((ms) => ms * 1000),
      }),
    ],
    detail: { pacedRate: rate, blastDirect, blastRelay, pacedDirect, pacedRelay, blast, paced },
  };
}
