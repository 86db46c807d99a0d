/**
 * Many seeds on several cores: the same CLI in child processes, each running
 * one shard of the runs and printing its results as JSON lines. Every run is
 * independent and deterministic, so the shards add up to exactly the
 * single-process result.
 */
import type { Plant } from "./probe.ts";
import type { SeedResult, Summary } from "./run.ts";
import type { StoreKind } from "./trace.ts";

export interface Plan {
  first: number;
  count: number;
  steps: number;
  stores: StoreKind | "both";
  plant: Plant | null;
  strict: boolean;
}

/**
 * Which store kinds a seed runs on. `both`: every seed on memory stores and
 * every fourth also on SQLite with crashes (SQLite costs ~5× more a run); a
 * single seed replays on both.
 */
export function kindsFor(plan: Plan): (seed: number) => StoreKind[] {
  const { stores } = plan;
  if (stores !== "both") return () => [stores];
  if (plan.count === 1) return () => ["memory", "sqlite"];
  return (seed) => (seed % 4 === 0 ? ["memory", "sqlite"] : ["memory"]);
}

export function planArgs(plan: Plan): string[] {
  return [
    ...["--seed", String(plan.first), "--seeds", String(plan.count)],
    ...["--steps", String(plan.steps), "--stores", plan.stores],
    ...(plan.plant ? ["--plant", plan.plant] : []),
    ...(plan.strict ? ["--strict"] : []),
  ];
}

const MAIN = new URL("./main.ts", import.meta.url).pathname;

export async function runInProcesses(plan: Plan, jobs: number): Promise<Summary> {
  const started = performance.now();
  const children = Array.from({ length: jobs }, (_, k) =>
    Bun.spawn([process.execPath, MAIN, ...planArgs(plan), "--shard", `${k}/${jobs}`], {
      stdout: "pipe",
      stderr: "inherit",
    }),
  );
  const outputs = await Promise.all(
    children.map(async (child) => {
      const text = await new Response(child.stdout).text();
      const code = await child.exited;
      if (code !== 0 && code !== 1) throw new Error(`simulation shard exited with ${code}`);
      return text;
    }),
  );
  const results = outputs
    .flatMap((text) => text.split("\n").filter((line) => line.startsWith("{")))
    .map((line) => JSON.parse(line) as SeedResult)
    .sort((a, b) => a.seed - b.seed || a.stores.localeCompare(b.stores));
  return {
    results,
    violations: results.filter((r) => r.violation !== null),
    ms: performance.now() - started,
  };
}
