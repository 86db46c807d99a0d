/** `bun run bench` flags: full-size defaults, `--quick` for the CI smoke run. */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT } from "../scripts/build-binary.ts";
import { PLACEMENT } from "./relay-env.ts";
import { type BenchOptions, SCENARIOS, type ScenarioName } from "./types.ts";

type Sizes = Omit<
  BenchOptions,
  "quick" | "only" | "out" | "cpuProfDir" | "relayBinary" | "relayEnv"
>;

const FULL: Sizes = {
  k: 16,
  m: 50_000,
  s: 256,
  m16k: 2_000,
  roundTrips: 2_000,
  n: 256,
  durationMs: 10_000,
  fanin: 10_000,
  faninProcs: 2,
  heartbeatMs: 5_000,
  drainFrames: 100_000,
  startRuns: 5,
  repeat: 3,
  pacedRate: null,
  windowBytes: 64 * 1024,
};

/** Small enough to finish in well under 90 s on a busy 2-core CI box (CI allows 300 s). */
const QUICK: Sizes = {
  k: 4,
  m: 2_000,
  s: 256,
  m16k: 100,
  roundTrips: 200,
  n: 32,
  durationMs: 1_000,
  fanin: 500,
  faninProcs: 1,
  heartbeatMs: 1_000,
  drainFrames: 5_000,
  startRuns: 2,
  repeat: 1,
  pacedRate: null,
  windowBytes: 64 * 1024,
};

export const HELP = `bun run bench [--quick] [flags]

Runs the compiled relay (dist/makima-relay, built if stale) as its own process,
drives it from separate load processes, and runs every scenario in direct mode
(daemons straight to the simulated server) too, so each figure has its ratio.

  --quick              small counts, well under 90 s in all (the CI smoke run)
  --k N                daemons in stream and dispatch            (full ${FULL.k}, quick ${QUICK.k})
  --m N                frames per daemon in the stream blast     (${FULL.m}, ${QUICK.m})
  --s BYTES            bytes per stream frame                    (${FULL.s})
  --m16k N             frames per daemon in the 16 KiB blast     (${FULL.m16k}, ${QUICK.m16k})
  --round-trips N      tasks spawned one at a time, unloaded     (${FULL.roundTrips}, ${QUICK.roundTrips})
  --n N                tasks kept in flight by dispatch/fan-in   (${FULL.n}, ${QUICK.n})
  --duration SECONDS   paced stream and each dispatch window     (${FULL.durationMs / 1000}, ${QUICK.durationMs / 1000})
  --fanin N            daemons connected in fan-in               (${FULL.fanin}, ${QUICK.fanin})
  --fanin-procs N      load processes holding them               (${FULL.faninProcs}, ${QUICK.faninProcs})
  --heartbeat-ms MS    fan-in heartbeat period per daemon        (${FULL.heartbeatMs}, ${QUICK.heartbeatMs})
  --drain-frames N     frames queued during the outage           (${FULL.drainFrames}, ${QUICK.drainFrames})
  --start-runs N       relay starts timed by the startup scenario (${FULL.startRuns}, ${QUICK.startRuns})
  --paced-rate N       paced stream rate in frames/s (default: half the relay's blast rate)
  --repeat N           direct/relay pairs per scenario, median kept (${FULL.repeat}, ${QUICK.repeat}; fan-in runs once)
  --window-kb KB       bytes a load daemon lets its socket buffer (${FULL.windowBytes / 1024})
  --only LIST          comma-separated subset of: ${SCENARIOS.join(", ")}
  --out PATH           results as PATH.json and PATH.md (default bench-results/bench-<time>)
  --relay-binary PATH  measure this prebuilt relay instead of building dist/makima-relay
  --relay-env N=V      a non-default run: set MAKIMA_RELAY_N=V in every relay (repeatable;
                       labelled in the report). Nothing else of this shell reaches the relay.
  --cpu-prof DIR       profile every relay (BUN_OPTIONS=--cpu-prof); DIR/<run>/*.cpuprofile and .md
  -h, --help           this text
`;

export type Parsed =
  | { ok: true; opts: BenchOptions }
  | { ok: false; message: string; help?: boolean };

export function parseOptions(argv: readonly string[]): Parsed {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: "boolean" },
        k: { type: "string" },
        m: { type: "string" },
        s: { type: "string" },
        m16k: { type: "string" },
        "round-trips": { type: "string" },
        "relay-env": { type: "string", multiple: true },
        n: { type: "string" },
        duration: { type: "string" },
        fanin: { type: "string" },
        "fanin-procs": { type: "string" },
        "heartbeat-ms": { type: "string" },
        "drain-frames": { type: "string" },
        "start-runs": { type: "string" },
        "window-kb": { type: "string" },
        repeat: { type: "string" },
        "paced-rate": { type: "string" },
        only: { type: "string" },
        out: { type: "string" },
        "cpu-prof": { type: "string" },
        "relay-binary": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
  if (values.help) return { ok: false, message: HELP, help: true };
  const base = values.quick ? QUICK : FULL;
  const problems: string[] = [];
  const int = (flag: string, fallback: number, min = 1): number => {
    const raw = values[flag];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) problems.push(`--${flag} must be an integer ≥ ${min}`);
    return n;
  };
  const seconds = values.duration === undefined ? base.durationMs / 1000 : Number(values.duration);
  if (!(seconds > 0 && seconds <= 3600)) problems.push("--duration must be in (0, 3600] seconds");
  const only = new Set<ScenarioName>();
  for (const name of String(values.only ?? SCENARIOS.join(",")).split(",")) {
    const trimmed = name.trim();
    if ((SCENARIOS as readonly string[]).includes(trimmed)) only.add(trimmed as ScenarioName);
    else problems.push(`--only: unknown scenario "${trimmed}"`);
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const opts: BenchOptions = {
    quick: values.quick === true,
    k: int("k", base.k),
    m: int("m", base.m),
    s: int("s", base.s, 64),
    m16k: int("m16k", base.m16k),
    roundTrips: int("round-trips", base.roundTrips),
    n: int("n", base.n),
    durationMs: Math.round(seconds * 1000),
    fanin: int("fanin", base.fanin),
    faninProcs: int("fanin-procs", base.faninProcs),
    heartbeatMs: int("heartbeat-ms", base.heartbeatMs, 100),
    drainFrames: int("drain-frames", base.drainFrames),
    startRuns: int("start-runs", base.startRuns),
    repeat: int("repeat", base.repeat),
    pacedRate: values["paced-rate"] === undefined ? null : int("paced-rate", 0),
    windowBytes: int("window-kb", base.windowBytes / 1024) * 1024,
    only,
    out: String(values.out ?? join(REPO_ROOT, "bench-results", `bench-${stamp}`)).replace(
      /\.(json|md)$/,
      "",
    ),
    cpuProfDir: typeof values["cpu-prof"] === "string" ? resolve(values["cpu-prof"]) : undefined,
    relayBinary:
      typeof values["relay-binary"] === "string" ? resolve(values["relay-binary"]) : undefined,
    relayEnv: relayEnvFlags(values["relay-env"], problems),
  };
  if (problems.length > 0) return { ok: false, message: problems.join("\n") };
  return { ok: true, opts };
}

/** `--relay-env NAME=VALUE`, NAME a relay setting; where the relay listens stays the bench's. */
function relayEnvFlags(raw: unknown, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of Array.isArray(raw) ? (raw as string[]) : []) {
    const eq = item.indexOf("=");
    const name = eq > 0 ? item.slice(0, eq) : "";
    if (!/^MAKIMA_RELAY_[A-Z0-9_]+$/.test(name) || PLACEMENT.has(name)) {
      problems.push(`--relay-env ${item}: expected MAKIMA_RELAY_NAME=VALUE (not HOST, PORT or DB)`);
      continue;
    }
    out[name] = item.slice(eq + 1);
  }
  return out;
}
