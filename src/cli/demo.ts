/**
 * `makima-relay demo`: the relay with a simulated Makima server and daemons
 * in this process (src/demo), until SIGINT or SIGTERM. Demo defaults sit
 * beneath the user's environment and flags: a temporary database (removed
 * on exit) unless MAKIMA_RELAY_DB or --db is given, and relay logs at warn
 * level unless MAKIMA_RELAY_LOG_LEVEL or --log-level is, so the terminal
 * stays readable.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type ConfigIo, loadConfig } from "../config/config.ts";
import { DEMO_DEFAULTS, startDemo } from "../demo/demo.ts";
import { parseDemoArgs } from "./demo-args.ts";
import { firstShutdownSignal, stopWithin } from "./signals.ts";

export interface DemoCommandIo {
  env: Record<string, string | undefined>;
  /** The whole command line (options are read from it as for `serve`). */
  argv: readonly string[];
  /** The words after `demo` that are not relay options. */
  args: readonly string[];
  configIo: ConfigIo;
  out(line: string): void;
  err(line: string): void;
}

/** How to attach a daemon of one's own: it then gets tasks like the simulated ones. */
function attachLines(attach: { url: string; key: string | null }): string[] {
  const key = attach.key ?? "<one of MAKIMA_RELAY_DAEMON_KEYS>";
  return [
    `  daemon     ${attach.url}  key ${key}`,
    `Attach your own daemon: MAKIMA_DAEMON_SERVER_URL=${attach.url} MAKIMA_API_KEY=${key} makima daemon`,
  ];
}

export async function runDemoCommand(io: DemoCommandIo): Promise<number> {
  const parsed = parseDemoArgs(io.args);
  if (!parsed.ok) {
    io.err(`makima-relay: ${parsed.error}`);
    return 2;
  }
  const tempDb = join(tmpdir(), `makima-relay-demo-${randomUUID()}`, "relay.db");
  const loaded = loadConfig(
    { MAKIMA_RELAY_DB: tempDb, MAKIMA_RELAY_LOG_LEVEL: "warn", ...io.env },
    io.argv,
    io.configIo,
  );
  if (!loaded.ok) {
    io.err(`makima-relay: ${loaded.error}`);
    return 2;
  }
  const temporary = loaded.value.config.dbPath === tempDb;
  const removeTemp = () => {
    if (temporary) rmSync(dirname(tempDb), { recursive: true, force: true });
  };
  if (temporary) mkdirSync(dirname(tempDb), { recursive: true });
  const shutdown = firstShutdownSignal();
  try {
    const demo = await startDemo({ config: loaded.value.config, ...parsed.value });
    const daemons = demo.daemons.length;
    io.out(
      [
        `makima-relay demo: the relay with a simulated Makima server and ${daemons} simulated daemons`,
        `  dashboard  ${demo.urls.dashboard}`,
        `  API docs   ${demo.urls.docs}`,
        `  status     ${demo.urls.status}`,
        `  database   ${loaded.value.config.dbPath}${temporary ? " (temporary, removed on exit)" : ""}`,
        ...attachLines(demo.attach),
        `Spawning ${parsed.value.ratePerSec ?? DEMO_DEFAULTS.ratePerSec} task(s)/s. Relay logs at ${loaded.value.config.logLevel} level below (MAKIMA_RELAY_LOG_LEVEL=info for more). Ctrl-C to stop.`,
      ].join("\n"),
    );
    const signal = await shutdown;
    demo.relay.log.log("info", "shutdown", { signal });
    await stopWithin(
      () => demo.stop(),
      () => {
        io.err("makima-relay: the demo did not stop in time; exiting anyway");
        removeTemp();
      },
    );
    return 0;
  } finally {
    removeTemp();
  }
}
