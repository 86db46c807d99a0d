/**
 * bun run simulate [--seeds N] [--seed S] [--steps K] [--stores sqlite|memory|both]
 *                  [--plant drop-paused-frames|drop-completed-writes] [--strict] [--verbose]
 *
 * Runs seeds S..S+N-1 (default 1..200) for K steps each (default 2000). With
 * `both` (the default) every seed runs on memory stores and every fourth also
 * on SQLite with crashes, which keeps 200 × 2000 well inside the budget. A
 * violation prints the seed, the step, the invariant, the last events and the
 * command that replays it; the exit code is then 1.
 */
import type { Plant } from "./probe.ts";
import { runSeeds, type SeedResult } from "./run.ts";
import type { StoreKind } from "./trace.ts";

interface Args {
  seeds: number;
  seed: number | null;
  steps: number;
  stores: StoreKind | "both";
  plant: Plant | null;
  strict: boolean;
  verbose: boolean;
}

const PLANTS: readonly Plant[] = ["drop-paused-frames", "drop-completed-writes"];

function parse(argv: string[]): Args {
  const args: Args = {
    seeds: 200,
    seed: null,
    steps: 2000,
    stores: "both",
    plant: null,
    strict: false,
    verbose: false,
  };
  let seedsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1] ?? "";
    const int = (): number => {
      i++;
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer`);
      return n;
    };
    if (flag === "--seeds") {
      args.seeds = int();
      seedsGiven = true;
    } else if (flag === "--seed") args.seed = int();
    else if (flag === "--steps") args.steps = int();
    else if (flag === "--stores") {
      i++;
      if (value !== "sqlite" && value !== "memory" && value !== "both")
        throw new Error("--stores is sqlite, memory or both");
      args.stores = value;
    } else if (flag === "--plant") {
      i++;
      if (!PLANTS.includes(value as Plant))
        throw new Error(`--plant is one of ${PLANTS.join(", ")}`);
      args.plant = value as Plant;
    } else if (flag === "--strict") args.strict = true;
    else if (flag === "--verbose") args.verbose = true;
    else throw new Error(`unknown option ${flag}`);
  }
  // --seed S alone replays that one seed.
  if (args.seed !== null && !seedsGiven) args.seeds = 1;
  return args;
}

function kindsFor(args: Args): (seed: number) => StoreKind[] {
  if (args.stores !== "both") return () => [args.stores as StoreKind];
  if (args.seeds === 1) return () => ["memory", "sqlite"];
  return (seed) => (seed % 4 === 0 ? ["memory", "sqlite"] : ["memory"]);
}

function report(r: SeedResult, args: Args): void {
  const v = r.violation;
  if (!v) return;
  const extra = `${args.plant ? ` --plant ${args.plant}` : ""}${args.strict ? " --strict" : ""}`;
  console.log(
    `\nVIOLATION seed=${v.seed} stores=${v.stores} step=${v.step} invariant=${v.invariant}`,
  );
  console.log(`  ${v.message}`);
  console.log("  last events:");
  for (const line of v.trace) console.log(`    ${line}`);
  console.log(
    `  replay: bun run simulate --seed ${v.seed} --stores ${v.stores} --steps ${args.steps}${extra}`,
  );
}

function main(): number {
  let args: Args;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const first = args.seed ?? 1;
  const echo = args.verbose ? (line: string) => console.log(line) : undefined;
  const summary = runSeeds(
    first,
    args.seeds,
    args.steps,
    kindsFor(args),
    { plant: args.plant, strict: args.strict, ...(echo ? { echo } : {}) },
    (r) => report(r, args),
  );
  const { results, violations, ms } = summary;
  const sqlite = results.filter((r) => r.stores === "sqlite");
  const sum = (f: (r: SeedResult) => number) => results.reduce((n, r) => n + f(r), 0);
  console.log(
    [
      `\nsimulated ${results.length} runs (${results.length - sqlite.length} memory, ${sqlite.length} sqlite) of seeds ${first}..${first + args.seeds - 1}`,
      `steps: ${sum((r) => r.steps)}, tasks: ${sum((r) => r.tasks)}, frames: ${sum((r) => r.frames)}, crashes: ${sum((r) => r.crashes)}, failed commits: ${sum((r) => r.commitFaults)}`,
      `violations: ${violations.length}${violations.length ? ` (first: seed ${violations[0]?.seed} ${violations[0]?.stores})` : ""}`,
      `time: ${(ms / 1000).toFixed(1)} s`,
    ].join("\n"),
  );
  return violations.length > 0 ? 1 : 0;
}

process.exit(main());
