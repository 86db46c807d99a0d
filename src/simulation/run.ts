/**
 * Running seeds: one seed is one world, driven for `steps` random steps and a
 * quiet period, on SQLite (with crashes) or memory stores. Used by the CLI
 * and the tests; the same seed and options always give the same run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quiet, step } from "./driver.ts";
import type { Plant } from "./probe.ts";
import type { StoreKind, Violation } from "./trace.ts";
import { World } from "./world.ts";

export interface RunOptions {
  seed: number;
  steps: number;
  stores: StoreKind;
  plant?: Plant | null;
  /** Also check promises that a known core issue breaks. */
  strict?: boolean;
  /** Prints every trace line as it happens (replaying one seed). */
  echo?: (line: string) => void;
  /** runSeeds stops at the first violation (to measure how soon a bug is caught). */
  stopAtFirst?: boolean;
}

export interface SeedResult {
  seed: number;
  stores: StoreKind;
  steps: number;
  violation: Violation | null;
  crashes: number;
  tasks: number;
  frames: number;
  commitFaults: number;
}

export function runSeed(opts: RunOptions): SeedResult {
  const dir = mkdtempSync(join(tmpdir(), "makima-sim-"));
  try {
    const world = new World({
      seed: opts.seed,
      stores: opts.stores,
      plant: opts.plant ?? null,
      dir,
      strict: opts.strict ?? false,
    });
    world.trace.echo = opts.echo ?? null;
    let steps = 0;
    try {
      for (let i = 1; i <= opts.steps && !world.verdict.failed; i++) {
        step(world, i);
        steps = i;
      }
      if (!world.verdict.failed) {
        world.trace.step = opts.steps + 1;
        quiet(world);
      }
    } catch (err) {
      // A throw out of the core is a bug too; the seed replays it.
      world.fail("noException", err instanceof Error ? (err.stack ?? err.message) : String(err));
    }
    if (world.core) world.core.kill();
    return {
      seed: opts.seed,
      stores: opts.stores,
      steps,
      violation: world.verdict.violation,
      crashes: world.crashes,
      tasks: world.model.attempts.size,
      frames: world.ledger.frames.size,
      commitFaults: world.faults.injected,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Summary {
  results: SeedResult[];
  violations: SeedResult[];
  ms: number;
}

/** One shard of `of` (runs i with i % of === index), for running on several cores. */
export interface Shard {
  index: number;
  of: number;
}

/** Seeds `first`.. `first + count - 1`, each on the store kinds asked for. */
export function runSeeds(
  first: number,
  count: number,
  steps: number,
  kinds: (seed: number) => StoreKind[],
  extra: Omit<RunOptions, "seed" | "steps" | "stores"> = {},
  onResult?: (r: SeedResult) => void,
  shard: Shard = { index: 0, of: 1 },
): Summary {
  const started = performance.now();
  const results: SeedResult[] = [];
  let i = 0;
  for (let seed = first; seed < first + count; seed++) {
    for (const stores of kinds(seed)) {
      if (i++ % shard.of !== shard.index) continue;
      const r = runSeed({ seed, steps, stores, ...extra });
      results.push(r);
      onResult?.(r);
      if (r.violation && extra.stopAtFirst) return summary(results, started);
    }
  }
  return summary(results, started);
}

const summary = (results: SeedResult[], started: number): Summary => ({
  results,
  violations: results.filter((r) => r.violation !== null),
  ms: performance.now() - started,
});
