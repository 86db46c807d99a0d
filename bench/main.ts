#!/usr/bin/env bun
import { BINARY_PATH, ensureBinary, REPO_ROOT } from "../scripts/build-binary.ts";
/**
 * `bun run bench`: the relay's performance against direct mode.
 *
 * Processes (see BENCHMARKS.md): this one runs the sim server and does the
 * bookkeeping; the relay is the compiled binary in its own process; daemons
 * live in load processes (bench/load.ts) driven over stdin/stdout.
 * Each scenario runs direct (daemons → sim server) and through the relay,
 * and the figures come out as a Markdown table on stdout plus JSON and
 * Markdown files.
 */
import { machineInfo } from "./machine.ts";
import { otherLoad } from "./meters.ts";
import { parseOptions } from "./options.ts";
import { killChildren, machineBusyCores } from "./proc.ts";
import { type BenchResults, renderMarkdown, writeResults } from "./report.ts";
import type { BenchContext } from "./run-kit.ts";
import { dispatchScenario } from "./scenario-dispatch.ts";
import { drainScenario } from "./scenario-drain.ts";
import { faninScenario } from "./scenario-fanin.ts";
import { roundtripScenario } from "./scenario-roundtrip.ts";
import { startupScenario } from "./scenario-startup.ts";
import { streamScenario } from "./scenario-stream.ts";
import { median } from "./stats.ts";
import { figure, SCENARIOS, type ScenarioName, type ScenarioReport } from "./types.ts";

type Runner = (ctx: BenchContext) => Promise<Omit<ScenarioReport, "seconds">>;

const RUNNERS: Record<ScenarioName, Runner> = {
  startup: startupScenario,
  roundtrip: roundtripScenario,
  stream: streamScenario,
  dispatch: dispatchScenario,
  fanin: faninScenario,
  drain: drainScenario,
};

/** Above this many busy cores before the start, the run is flagged as sharing the machine. */
const BUSY_WARNING_CORES = 0.25;

/** A backstop: no run may outlive this, whatever hangs. */
const WATCHDOG_MS = { quick: 120_000, full: 3_600_000 };

async function main(argv: string[]): Promise<number> {
  const parsed = parseOptions(argv);
  if (!parsed.ok) {
    (parsed.help ? console.log : console.error)(parsed.message);
    return parsed.help ? 0 : 2;
  }
  const { opts } = parsed;
  const watchdog = setTimeout(
    () => {
      console.error(`bench: watchdog fired; killing children and exiting`);
      killChildren();
      process.exit(3);
    },
    opts.quick ? WATCHDOG_MS.quick : WATCHDOG_MS.full,
  );
  const started = performance.now();
  const ctx: BenchContext = {
    opts,
    relays: [],
    log: (message) =>
      console.error(`[bench ${((performance.now() - started) / 1000).toFixed(1)}s] ${message}`),
  };
  if (!opts.relayBinary) await ensureBinary();
  const busyBeforeRun = await machineBusyCores(opts.quick ? 300 : 2_000);
  if (busyBeforeRun > BUSY_WARNING_CORES) {
    ctx.log(
      `warning: ${busyBeforeRun.toFixed(2)} cores were busy before the run; figures will be noisy`,
    );
  }
  const scenarios: ScenarioReport[] = [];
  for (const name of SCENARIOS) {
    if (!opts.only.has(name)) continue;
    const t0 = performance.now();
    const firstRelay = ctx.relays.length;
    const relays = () => ({ relays: ctx.relays.slice(firstRelay) });
    otherLoad.length = 0;
    const others = () => (otherLoad.length > 0 ? { otherCoresMax: Math.max(...otherLoad) } : {});
    try {
      const report = await RUNNERS[name](ctx);
      scenarios.push({
        ...report,
        seconds: (performance.now() - t0) / 1000,
        ...others(),
        ...relays(),
      });
    } catch (error) {
      const message = String((error as Error)?.stack ?? error);
      ctx.log(`${name} failed: ${message}`);
      scenarios.push({
        name,
        title: name,
        figures: [],
        detail: {},
        seconds: (performance.now() - t0) / 1000,
        ...others(),
        ...relays(),
        error: message,
      });
    }
  }
  addAllStarts(
    scenarios,
    ctx.relays.filter((r) => !r.label.startsWith("startup-")).map((r) => r.startMs),
  );
  const results: BenchResults = {
    date: new Date().toISOString(),
    machine: machineInfo(REPO_ROOT),
    busyBeforeRun,
    relayBinary: opts.relayBinary ?? BINARY_PATH,
    options: { ...opts, only: [...opts.only] },
    totalSeconds: (performance.now() - started) / 1000,
    scenarios,
  };
  const markdown = renderMarkdown(results);
  writeResults(results, markdown, opts.out);
  console.log(markdown);
  console.log(`Results: ${opts.out}.json and ${opts.out}.md`);
  clearTimeout(watchdog);
  return scenarios.some((s) => s.error) ? 1 : 0;
}

/** Every relay the scenarios started is one more start-time sample. */
function addAllStarts(scenarios: ScenarioReport[], starts: readonly number[]): void {
  const startup = scenarios.find((s) => s.name === "startup" && !s.error);
  if (!startup || starts.length === 0) return;
  startup.figures.push(
    figure(
      `start → /health, median of all ${starts.length} scenario relays`,
      "ms",
      null,
      median([...starts]),
    ),
  );
  startup.detail.scenarioStartsMs = starts;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killChildren();
    process.exit(130);
  });
}
process.on("exit", killChildren);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench: ${(error as Error)?.stack ?? error}`);
    killChildren();
    process.exit(1);
  },
);
