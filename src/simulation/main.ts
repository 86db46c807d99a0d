/**
 * bun run simulate [--seeds N] [--seed S] [--steps K] [--stores sqlite|memory|both]
 *                  [--jobs J] [--plant drop-paused-frames|drop-completed-writes]
 *                  [--strict] [--stop] [--verbose]
 *
 * Runs seeds S..S+N-1 (default 1..200) for K steps each (default 2000) in J
 * processes (default 2). With `both` (the default) every seed runs on memory
 * stores and every fourth also on SQLite with crashes. `--seed S` alone
 * replays that seed. A violation prints the seed, the step, the invariant,
 * the last events and the command that replays it; the exit code is then 1.
 * `--strict` adds the checks a known core issue breaks (README.md here);
 * `--stop` ends at the first violation (one process: how soon is a bug caught).
 */
import { kindsFor, type Plan, runInProcesses } from "./parallel.ts";
import type { Plant } from "./probe.ts";
import { runSeeds, type SeedResult, type Shard, type Summary } from "./run.ts";

interface Args extends Plan {
  jobs: number;
  shard: Shard | null;
  verbose: boolean;
  stop: boolean;
}

const PLANTS: readonly Plant[] = ["drop-paused-frames", "drop-completed-writes"];

function parse(argv: string[]): Args {
  const args: Args = {
    first: 1,
    count: 200,
    steps: 2000,
    stores: "both",
    plant: null,
    strict: false,
    jobs: 2,
    shard: null,
    verbose: false,
    stop: false,
  };
  let seedsGiven = false;
  let seedGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i] ?? "";
    const int = (): number => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer`);
      return n;
    };
    if (flag === "--seeds") [args.count, seedsGiven] = [int(), true];
    else if (flag === "--seed") [args.first, seedGiven] = [int(), true];
    else if (flag === "--steps") args.steps = int();
    else if (flag === "--jobs") args.jobs = Math.max(1, int());
    else if (flag === "--stores") {
      if (value !== "sqlite" && value !== "memory" && value !== "both")
        throw new Error("--stores is sqlite, memory or both");
      args.stores = value;
    } else if (flag === "--plant") {
      if (!PLANTS.includes(value as Plant))
        throw new Error(`--plant is one of ${PLANTS.join(", ")}`);
      args.plant = value as Plant;
    } else if (flag === "--shard") {
      const [index, of] = value.split("/").map(Number);
      args.shard = { index: index ?? 0, of: of ?? 1 };
    } else {
      i--;
      if (flag === "--strict") args.strict = true;
      else if (flag === "--verbose") args.verbose = true;
      else if (flag === "--stop") args.stop = true;
      else throw new Error(`unknown option ${flag}`);
    }
  }
  if (seedGiven && !seedsGiven) args.count = 1;
  return args;
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

function summarize(args: Args, { results, violations, ms }: Summary): void {
  const sqlite = results.filter((r) => r.stores === "sqlite").length;
  const sum = (f: (r: SeedResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const first = violations[0];
  console.log(
    [
      `\nsimulated ${results.length} runs (${results.length - sqlite} memory, ${sqlite} sqlite) of seeds ${args.first}..${args.first + args.count - 1} in ${args.jobs} process(es)`,
      `steps: ${sum((r) => r.steps)}, tasks: ${sum((r) => r.tasks)}, frames: ${sum((r) => r.frames)}, crashes: ${sum((r) => r.crashes)}, failed commits: ${sum((r) => r.commitFaults)}`,
      `violations: ${violations.length}${first ? ` (first: seed ${first.seed} ${first.stores})` : ""}`,
      `time: ${(ms / 1000).toFixed(1)} s`,
    ].join("\n"),
  );
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const extra = {
    plant: args.plant,
    strict: args.strict,
    stopAtFirst: args.stop,
    ...(args.verbose ? { echo: (line: string) => console.log(line) } : {}),
  };
  if (args.shard) {
    // A child of runInProcesses: results only, one JSON line each.
    const print = (r: SeedResult) => console.log(JSON.stringify(r));
    runSeeds(args.first, args.count, args.steps, kindsFor(args), extra, print, args.shard);
    return 0;
  }
  const jobs = args.verbose || args.stop || args.count === 1 ? 1 : args.jobs;
  args.jobs = jobs;
  const summary =
    jobs > 1
      ? await runInProcesses(args, jobs)
      : runSeeds(args.first, args.count, args.steps, kindsFor(args), extra);
  for (const r of summary.violations) report(r, args);
  summarize(args, summary);
  return summary.violations.length > 0 ? 1 : 0;
}

process.exit(await main());
