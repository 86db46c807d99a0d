/**
 * roundtrip: the unloaded spawn → complete. One daemon of capacity 1; the
 * server spawns one task, waits for its taskComplete, rests a moment, and
 * spawns the next, so every task crosses an idle relay on its own (no
 * batching with others, no queue). Latency is spawnTask written →
 * taskComplete received, both on the server's clock; the figure is what the
 * relay adds to the same round trip in direct mode.
 *
 * Default settings: one task at a time stays under the default per-daemon
 * rate limit (1000 frames/s), which the rest between tasks guarantees.
 */
import { nowMs } from "../src/sim/wait.ts";
import type { BenchServer } from "./bench-server.ts";
import { LoadProcess } from "./load-client.ts";
import { Meters, type RunCost } from "./meters.ts";
import { type BenchContext, pairedRuns, setUp, spreadNote } from "./run-kit.ts";
import { type LatencySummary, Samples } from "./stats.ts";
import { API_KEY, figure, type Mode, type ScenarioReport } from "./types.ts";

/** Rest between tasks: keeps the relay idle between them and the daemon under 1000 frames/s. */
const REST_MS = 2;
const TASK_TIMEOUT_MS = 5_000;
const TARGET_ADDED_US = 150;

interface RoundTripRun {
  tasks: number;
  /** Spawned tasks whose taskComplete never came within the timeout. */
  lost: number;
  latencyMs: LatencySummary;
  cost: RunCost;
  relayCpuUsPerTask: number | null;
}

async function oneByOne(
  server: BenchServer,
  target: string,
  count: number,
  label: string,
): Promise<{ latency: Samples; lost: number }> {
  const latency = new Samples();
  let waiting: { taskId: string; at: number; done: () => void } | null = null;
  const unsubscribe = server.sim.onFrame((f) => {
    const w = waiting;
    if (w === null || f.msg?.type !== "taskComplete" || f.msg.taskId !== w.taskId) return;
    latency.add(f.at - w.at);
    w.done();
  });
  let lost = 0;
  try {
    for (let i = 0; i < count; i++) {
      const { promise, resolve } = Promise.withResolvers<boolean>();
      const timer = setTimeout(() => resolve(false), TASK_TIMEOUT_MS);
      waiting = { taskId: `${label}-${i}`, at: nowMs(), done: () => resolve(true) };
      server.sim.spawnTask(waiting.taskId, "bench task", {}, target);
      if (!(await promise)) lost++;
      clearTimeout(timer);
      await Bun.sleep(REST_MS);
    }
  } finally {
    unsubscribe();
  }
  return { latency, lost };
}

async function runMode(ctx: BenchContext, mode: Mode): Promise<RoundTripRun> {
  const count = ctx.opts.roundTrips;
  await using run = await setUp(ctx, mode, "roundtrip");
  await using load = new LoadProcess(`roundtrip-${mode}`);
  const conn = await load.connect({
    url: run.daemonUrl,
    apiKey: API_KEY,
    count: 1,
    capacity: 1,
    prefix: `roundtrip-${mode}`,
    concurrency: 1,
    autoComplete: true,
    timeoutMs: 15_000,
  });
  if (conn.failed > 0) throw new Error(`the daemon failed to connect: ${conn.firstError}`);
  const [target] = await run.targets(1);
  const meters = new Meters(run.relay, [load.pid]);
  const { latency, lost } = await oneByOne(run.server, target as string, count, `rt-${mode}`);
  const cost = meters.stop();
  const latencyMs = latency.summary();
  ctx.log(`  ${mode}: p50 ${(latencyMs.p50 * 1000).toFixed(0)} µs over ${latency.count} tasks`);
  return {
    tasks: latency.count,
    lost,
    latencyMs,
    cost,
    relayCpuUsPerTask:
      cost.relayCpuMs === null ? null : (cost.relayCpuMs * 1000) / Math.max(1, latency.count),
  };
}

export async function roundtripScenario(
  ctx: BenchContext,
): Promise<Omit<ScenarioReport, "seconds">> {
  ctx.log(`roundtrip: ${ctx.opts.roundTrips} tasks one at a time, ${REST_MS} ms apart`);
  const runs = await pairedRuns(
    ctx,
    (mode) => runMode(ctx, mode),
    (r) => r.latencyMs.p50,
  );
  const { direct, relay } = runs;
  const both = (f: (r: RoundTripRun) => number) => [f(direct), f(relay)] as const;
  const us = (ms: number) => ms * 1000;
  const addedP50 = us(relay.latencyMs.p50 - direct.latencyMs.p50);
  const addedP99 = us(relay.latencyMs.p99 - direct.latencyMs.p99);
  return {
    name: "roundtrip",
    title: `unloaded round trip (${ctx.opts.roundTrips} tasks, one at a time, ${REST_MS} ms apart; one daemon)`,
    figures: [
      figure("spawn → complete p50", "µs", ...both((r) => us(r.latencyMs.p50))),
      figure("spawn → complete p99", "µs", ...both((r) => us(r.latencyMs.p99))),
      figure("added spawn → complete p50 (relay − direct)", "µs", null, addedP50, {
        text: `≤ +${TARGET_ADDED_US} µs`,
        met: addedP50 <= TARGET_ADDED_US,
      }),
      figure("added spawn → complete p99 (relay − direct)", "µs", null, addedP99),
      figure("tasks never completed", "tasks", ...both((r) => r.lost), {
        text: "0",
        met: relay.lost === 0,
      }),
      figure("relay CPU per task, idle relay", "µs", null, relay.relayCpuUsPerTask),
    ],
    notes: spreadNote("p50 spawn → complete (µs)", "µs", {
      ...runs,
      directKeys: runs.directKeys.map(us),
      relayKeys: runs.relayKeys.map(us),
    }),
    detail: { direct, relay, runs },
  };
}
