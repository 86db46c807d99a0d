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
import type { RelayProcess } from "./relay-process.ts";
import { type BenchContext, daemonsWithOneTask, pairedRuns, setUp, spreadNote } from "./run-kit.ts";
import { figure, type Mode, type ScenarioReport } from "./types.ts";

const TARGET_FPS = 50_000;
const PHASE_TIMEOUT_MS = 180_000;
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

async function runMode(ctx: BenchContext, mode: Mode): Promise<DrainRun> {
  const { k, s, drainFrames, windowBytes } = ctx.opts;
  const perDaemon = Math.ceil(drainFrames / k);
  const frames = perDaemon * k;
  await using run = await setUp(ctx, mode, "drain", {
    MAKIMA_RELAY_OUTBOX_MAX_BYTES: String(Math.max(64 * 2 ** 20, frames * (s + 64) * 2)),
    MAKIMA_RELAY_RECONNECT_BASE_MS: "20",
    MAKIMA_RELAY_RECONNECT_MAX_MS: "100",
  });
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
  const back = await sim.waitForConnection(15_000, (c) => c.role === "relay");
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
        {
          text: `≥ ${TARGET_FPS.toLocaleString("en-US")} frames/s`,
          met: relay.drainFps >= TARGET_FPS,
        },
      ),
      figure("relay CPU per frame drained", "µs", null, relay.drainCpuUsPerFrame),
      figure(
        "frames lost or out of order",
        "frames",
        direct.lost + direct.disordered,
        relay.lost + relay.disordered,
        {
          text: "0",
          met: relay.lost === 0 && relay.disordered === 0,
        },
      ),
    ],
    notes: spreadNote("drain frames/s", "frames/s", runs),
    detail: { direct, relay, runs },
  };
}
