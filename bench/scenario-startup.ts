/**
 * startup: spawn of the compiled binary → first 200 from /health, with a
 * fresh temp directory (so a new database and its migrations) every time and
 * the sim server listening as its upstream, default settings. Direct mode
 * has no equivalent.
 */
import { BenchServer } from "./bench-server.ts";
import { type BenchContext, startRelay } from "./run-kit.ts";
import { median } from "./stats.ts";
import { figure, type ScenarioReport } from "./types.ts";

const TARGET_MS = 100;

export async function startupScenario(ctx: BenchContext): Promise<Omit<ScenarioReport, "seconds">> {
  const runs: number[] = [];
  await using server = new BenchServer();
  for (let i = 0; i < ctx.opts.startRuns; i++) {
    await using relay = await startRelay(ctx, server.url, `startup-${i}`);
    runs.push(relay.startMs);
  }
  ctx.log(`startup: ${runs.map((ms) => `${ms.toFixed(1)} ms`).join(", ")}`);
  const mid = median(runs);
  return {
    name: "startup",
    title: `binary spawn → /health 200, ${runs.length} starts, each with a new database`,
    figures: [
      figure("start → /health, first run", "ms", null, runs[0] ?? Number.NaN),
      figure("start → /health, median", "ms", null, mid, {
        text: `≤ ${TARGET_MS} ms`,
        met: mid <= TARGET_MS,
      }),
      figure("start → /health, max", "ms", null, Math.max(...runs)),
    ],
    detail: { runsMs: runs },
  };
}
