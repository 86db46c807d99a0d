/**
 * dispatch: the server keeps N tasks in flight across K daemons that
 * complete each task the moment its spawnTask arrives. Through the relay each
 * task is also written to its SQLite history (pending → dispatched → ended),
 * as in production (default MAKIMA_RELAY_HISTORY_KEEP); the history row
 * count is read back to prove it.
 */
import { type DispatchResult, runDispatch } from "./dispatcher.ts";
import { LoadProcess } from "./load-client.ts";
import { Meters, type RunCost } from "./meters.ts";
import { LIFT_DAEMON_LIMITS } from "./relay-env.ts";
import {
  type BenchContext,
  CONNECT_CONCURRENCY,
  pairedRuns,
  setUp,
  spreadNote,
} from "./run-kit.ts";
import { API_KEY, figure, type Mode, type ScenarioReport } from "./types.ts";

export interface DispatchRun extends DispatchResult {
  cost: RunCost;
  /** Relay CPU per task; each task is two relayed frames (spawnTask down, taskComplete up). */
  relayCpuUsPerTask: number | null;
  historyRows: number | null;
}

const TARGET_CPU_US_PER_TASK = 15;

async function runMode(ctx: BenchContext, mode: Mode): Promise<DispatchRun> {
  const { k, n, durationMs } = ctx.opts;
  // K daemons completing tens of thousands of tasks a second between them send
  // more than the default 1000 frames/s each: lifted, labelled in the report.
  await using run = await setUp(ctx, mode, "dispatch", [LIFT_DAEMON_LIMITS]);
  await using load = new LoadProcess(`dispatch-${mode}`);
  const conn = await load.connect({
    url: run.daemonUrl,
    apiKey: API_KEY,
    count: k,
    capacity: Math.ceil(n / k),
    prefix: `dispatch-${mode}`,
    concurrency: CONNECT_CONCURRENCY,
    autoComplete: true,
    timeoutMs: 15_000,
  });
  if (conn.failed > 0)
    throw new Error(`${conn.failed} daemons failed to connect: ${conn.firstError}`);
  const targets = await run.targets(k);
  const meters = new Meters(run.relay, [load.pid]);
  const result = await runDispatch(run.server, {
    inFlight: n,
    durationMs,
    drainTimeoutMs: 15_000,
    targets,
    label: `dispatch-${mode}`,
  });
  const cost = meters.stop();
  ctx.log(`  ${mode}: ${Math.round(result.tasksPerSec)} tasks/s`);
  return {
    ...result,
    cost,
    relayCpuUsPerTask:
      cost.relayCpuMs === null ? null : (cost.relayCpuMs * 1000) / Math.max(1, result.completed),
    historyRows: run.relay ? await historyRows(run.relay.httpUrl) : null,
  };
}

export async function historyRows(httpUrl: string): Promise<number | null> {
  try {
    const body = (await (await fetch(`${httpUrl}/tasks?limit=1`)).json()) as { total?: number };
    return typeof body.total === "number" ? body.total : null;
  } catch {
    return null;
  }
}

export async function dispatchScenario(
  ctx: BenchContext,
): Promise<Omit<ScenarioReport, "seconds">> {
  const { k, n, durationMs } = ctx.opts;
  ctx.log(`dispatch: ${n} tasks in flight over ${k} daemons for ${durationMs} ms`);
  const runs = await pairedRuns(
    ctx,
    (mode) => runMode(ctx, mode),
    (r) => r.tasksPerSec,
  );
  const { direct, relay } = runs;
  const ratio = relay.tasksPerSec / Math.max(1, direct.tasksPerSec);
  const both = (f: (r: DispatchRun) => number) => [f(direct), f(relay)] as const;
  const cpuTask = relay.relayCpuUsPerTask ?? Number.NaN;
  return {
    name: "dispatch",
    title: `dispatch (N=${n} in flight, K=${k} daemons, ${durationMs / 1000} s window, history persisted)`,
    figures: [
      figure("tasks/s", "tasks/s", ...both((r) => r.tasksPerSec), {
        text: "≥ 0.5× direct",
        met: ratio >= 0.5,
      }),
      figure("spawn → complete p50", "ms", ...both((r) => r.latencyMs.p50)),
      figure("spawn → complete p99", "ms", ...both((r) => r.latencyMs.p99)),
      figure("spawn → complete max", "ms", ...both((r) => r.latencyMs.max)),
      figure("tasks unfinished", "tasks", ...both((r) => r.unfinished), {
        text: "0",
        met: relay.unfinished === 0,
      }),
      figure("relay CPU per dispatched task", "µs", null, cpuTask, {
        text: `≤ ${TARGET_CPU_US_PER_TASK} µs`,
        met: cpuTask <= TARGET_CPU_US_PER_TASK,
      }),
      figure("relay CPU per frame (2 frames/task)", "µs", null, cpuTask / 2),
      figure("relay RSS peak", "MB", null, relay.cost.relayRssPeakMB),
      figure("history rows written", "rows", null, relay.historyRows),
    ],
    notes: spreadNote("tasks/s", "tasks/s", runs),
    detail: { direct, relay, runs },
  };
}
