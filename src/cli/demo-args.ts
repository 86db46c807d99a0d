/** The `demo` command's own options (the relay's options work as for `serve`). */

import { DEMO_DEFAULTS } from "../demo/defaults.ts";
import type { DemoOptions } from "../demo/demo.ts";
import { err, ok, type Result } from "../protocol/result.ts";

export type DemoArgs = Pick<DemoOptions, "ratePerSec" | "runMs" | "failRate" | "flapEveryMs">;

const span = ([min, max]: readonly [number, number]) => `${min}-${max}`;

/** Lines for --help. */
export const DEMO_USAGE = [
  `  --rate N            tasks the simulated server spawns per second [${DEMO_DEFAULTS.ratePerSec}]`,
  `  --run-ms MIN-MAX    how long a simulated task runs [${span(DEMO_DEFAULTS.runMs)}]`,
  `  --fail-rate F       share of tasks that fail, 0..1 [${DEMO_DEFAULTS.failRate}]`,
  `  --flap-ms MIN-MAX   a daemon drops and reconnects every MIN-MAX ms, or off [${span(DEMO_DEFAULTS.flapEveryMs)}]`,
];

function range(text: string | undefined): [number, number] | null {
  const m = text?.match(/^(\d+)-(\d+)$/);
  if (!m) return null;
  const [min, max] = [Number(m[1]), Number(m[2])];
  return min <= max ? [min, max] : null;
}

const FLAGS = ["--rate", "--run-ms", "--fail-rate", "--flap-ms"] as const;

export function parseDemoArgs(args: readonly string[]): Result<DemoArgs, string> {
  const value: DemoArgs = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (!(FLAGS as readonly string[]).includes(flag)) {
      return err(`demo: unknown argument "${arg}" (see --help)`);
    }
    const raw = inline ?? args[++i];
    const bad = (what: string) => err(`demo ${flag}: expected ${what}, got "${raw ?? ""}"`);
    const n = Number(raw);
    if (flag === "--rate") {
      if (raw === undefined || !(n >= 0 && n <= 1000)) return bad("a number from 0 to 1000");
      value.ratePerSec = n;
    } else if (flag === "--fail-rate") {
      if (raw === undefined || !(n >= 0 && n <= 1)) return bad("a number from 0 to 1");
      value.failRate = n;
    } else if (flag === "--run-ms") {
      const r = range(raw);
      if (!r) return bad("MIN-MAX in ms");
      value.runMs = r;
    } else {
      const r = raw === "off" ? null : range(raw);
      if (raw !== "off" && (!r || r[0] < 1000)) return bad("MIN-MAX in ms (at least 1000), or off");
      value.flapEveryMs = r;
    }
  }
  return ok(value);
}
