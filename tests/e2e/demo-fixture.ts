/** The demo in this process, on port 0 with a throwaway database, for browser tests. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Demo, type DemoOptions, startDemo } from "../../src/demo/demo.ts";
import { configFor } from "../helpers/relay.ts";

export interface TestDemo extends Demo, AsyncDisposable {
  /** The relay's log lines, parsed. */
  logs: Record<string, unknown>[];
}

export async function startTestDemo(
  opts: Omit<DemoOptions, "config"> & { env?: Record<string, string> } = {},
): Promise<TestDemo> {
  const dir = mkdtempSync(join(tmpdir(), "makima-relay-e2e-"));
  const logs: Record<string, unknown>[] = [];
  const { env, ...rest } = opts;
  const demo = await startDemo({
    // Fast defaults: no spawning and long runs, so each test decides what happens when.
    ratePerSec: 0,
    runMs: [60_000, 60_000],
    flapEveryMs: null,
    ...rest,
    config: configFor({ MAKIMA_RELAY_LOG_LEVEL: "info", ...env }, dir),
    overrides: { write: (line) => logs.push(JSON.parse(line)) },
  });
  return Object.assign(demo, {
    logs,
    async [Symbol.asyncDispose]() {
      await demo.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
