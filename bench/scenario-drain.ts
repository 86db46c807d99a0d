/**
 * outage drain: with the relay's upstream down, daemons send D taskOutput
 * frames, which the relay appends to its durable outbox; the server comes
 * back on the same port and the relay sends the backlog, in order. Direct
 * mode has no outbox: its figure is the same frames sent by the daemons
 * straight to the server, i.e. what the link itself carries.
 */
import type { SimServer } from "../src/sim/index.ts";
import { LoadProcess } from "./load-client.ts";
import { Meters } from "./meters.ts";
import { OutputCollector } from "./output-collector.ts";
import { LIFT_DAEMON_LIMITS, type Tuning } from "./relay-env.ts";
import type { RelayProcess } from "./relay-process.ts";
import { type BenchContext, daemonsWithOneTask, pairedRuns, setUp, spreadNote } from "./run-kit.ts";
import { figure, type Mode, type ScenarioReport } from "./types.ts";

/** The relay's default MAKIMA_RELAY_OUTBOX_MAX_BYTES. */
const DEFAULT_OUTBOX_BYTES = 64 * 2 ** 20;
/** A generous bound on one queued frame's row beyond its payload (JSON envelope, index). */
const ROW_OVERHEAD_BYTES = 256;
const PHASE_TIMEOUT_MS = 180_000;
/** The default backoff doubles up to 60 s (plus jitter): the longest wait for the relay's return. */
const RECONNECT_WAIT_MS = 90_000;
const POLL_MS = 20;

interface DrainRun {
  frames: number;
  sent: number;
  received: number;
  lost: number;
  disordered: number;
  /** Relay only: daemon writes → all frames in the outbox. */
  enqueueMs: number | null;
  enqueueFps: number | null;
  enqueueCpuUsPerFrame: number | null;
  /** Upstream authenticated again (relay) or first write (direct) → last frame at the server. */
  drainMs: number;
  drainFps: number;
  drainCpuUsPerFrame: number | null;
  outboxAtReconnect: number | null;
}

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(POLL_MS);
  }
}

/**
 * Defaults but for two needs of the point: the daemons write faster than the
 * per-daemon limit (else the enqueue figure measures the limiter), and the
 * backlog must fit in the outbox (raised only when the default would not hold
 * it). The reconnect backoff stays at its default: the drain is timed from the
 * relay's re-authentication, so the wait before it costs wall time only.
 */
function drainTunings(frames: number, s: number): Tuning[] {
  const needed = frames * (s + ROW_OVERHEAD_BYTES);
  if (needed <= DEFAULT_OUTBOX_BYTES * 0.9) return [LIFT_DAEMON_LIMITS];
  return [
    LIFT_DAEMON_LIMITS,
    {
      env: { MAKIMA_RELAY_OUTBOX_MAX_BYTES: String(needed * 2) },
      why: "outbox limit raised to twice the backlog, which the default 64 MiB would not hold",
    },
  ];
}

async function runMode(ctx: BenchContext, mode: Mode): Promise<DrainRun> {
  const { k, s, drainFrames, windowBytes } = ctx.opts;
  const perDaemon = Math.ceil(drainFrames / k);
  const frames = perDaemon * k;
  await using run = await setUp(ctx, mode, "drain", drainTunings(frames, s));
  await using load = new LoadProcess(`drain-${mode}`);
  await daemonsWithOneTask(run, load, k, `drain-${mode}`);
  const blast = () =>
    load.stream({
      frames: perDaemon,
      bytes: s,
      mode: "blast",
      rate: 0,
      windowBytes,
      timeoutMs: PHASE_TIMEOUT_MS,
    });
  const collector = new OutputCollector(run.server.sim);
  try {
    const relay = run.relay;
    if (!relay) {
      const sent = await blast();
      await collector.settle(sent.sent, 3_000, PHASE_TIMEOUT_MS);
      const drainMs = collector.lastAt - sent.firstAt;
      return result({ frames, sent: sent.sent, collector, drainMs });
    }
    return await outageAndDrain(relay, run.server.sim, blast, collector, frames);
  } finally {
    collector.stop();
  }
}

async function outageAndDrain(
  relay: RelayProcess,
  sim: SimServer,
  blast: () => Promise<{ sent: number }>,
  collector: OutputCollector,
  frames: number,
): Promise<DrainRun> {
  await sim.stop();
  await waitUntil(
    "the relay to see the outage",
    async () => !(await relay.status()).upstreamConnected,
    10_000,
  );
  const enqueueMeter = new Meters(relay, []);
  const t0 = performance.now();
  const sent = await blast();
  let queued = 0;
  await waitUntil(
    "the outbox to hold every frame",
    async () => {
      queued = (await relay.status()).outbox.frames;
      return queued >= sent.sent;
    },
    PHASE_TIMEOUT_MS,
  );
  const enqueueMs = performance.now() - t0;
  const enqueueCost = enqueueMeter.stop();
  const drainMeter = new Meters(relay, []);
  sim.restart();
  const back = await sim.waitForConnection(RECONNECT_WAIT_MS, (c) => c.role === "relay");
  await collector.settle(sent.sent, 5_000, PHASE_TIMEOUT_MS);
  const drainCost = drainMeter.stop();
  const drainMs = collector.lastAt - back.authenticatedAt;
  const perFrame = (cpuMs: number | null, n: number) =>
    cpuMs === null ? null : (cpuMs * 1000) / Math.max(1, n);
  return result({
    frames,
    sent: sent.sent,
    collector,
    drainMs,
    enqueueMs,
    enqueueCpuUsPerFrame: perFrame(enqueueCost.relayCpuMs, sent.sent),
    drainCpuUsPerFrame: perFrame(drainCost.relayCpuMs, collector.received),
    outboxAtReconnect: queued,
  });
}

interface Measured {
  frames: number;
  sent: number;
  collector: OutputCollector;
  drainMs: number;
  enqueueMs?: number;
  enqueueCpuUsPerFrame?: number | null;
  drainCpuUsPerFrame?: number | null;
  outboxAtReconnect?: number;
}

function result(m: Measured): DrainRun {
  const { collector } = m;
  return {
    frames: m.frames,
    sent: m.sent,
    received: collector.received,
    lost: m.sent - collector.received,
    disordered: collector.disordered,
    enqueueMs: m.enqueueMs ?? null,
    enqueueFps: m.enqueueMs === undefined ? null : (m.sent * 1000) / m.enqueueMs,
    enqueueCpuUsPerFrame: m.enqueueCpuUsPerFrame ?? null,
    drainMs: m.drainMs,
    drainFps: m.drainMs > 0 ? (collector.received * 1000) / m.drainMs : 0,
    drainCpuUsPerFrame: m.drainCpuUsPerFrame ?? null,
    outboxAtReconnect: m.outboxAtReconnect ?? null,
  };
}

export async function drainScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, "seconds">> {
  const { k, s, drainFrames } = ctx.opts;
  ctx.log(`outage drain: ${drainFrames} frames of ${s} B from ${k} daemons`);
  const runs = await pairedRuns(
    ctx,
    async (mode) => {
      const run = await runMode(ctx, mode);
      ctx.log(`  ${mode}: ${Math.round(run.drainFps)} frames/s`);
      return run;
    },
    (r) => r.drainFps,
  );
  const { direct, relay } = runs;
  return {
    name: "drain",
    title: `outage drain (${relay.frames} frames of ${s} B queued while the server was down)`,
    figures: [
      figure("frames queued in the outbox at reconnect", "frames", null, relay.outboxAtReconnect),
      figure("outbox enqueue rate during the outage", "frames/s", null, relay.enqueueFps),
      figure("relay CPU per frame enqueued", "µs", null, relay.enqueueCpuUsPerFrame),
      figure(
        "drain rate after reconnect (direct: plain send)",
        "frames/s",
        direct.drainFps,
        relay.drainFps,
      ),
      figure("relay CPU per frame drained", "µs", null, relay.drainCpuUsPerFrame),
      figure(
        "frames lost or out of order",
        "frames",
        direct.lost + direct.disordered,
        relay.lost + relay.disordered,
        {
          text: "0 lost, 0 reordered",
          met: relay.lost === 0 && relay.disordered === 0,
        },
      ),
    ],
    notes: spreadNote("drain frames/s", "frames/s", runs),
    detail: { direct, relay, runs },
  };
}
