#!/usr/bin/env bun
/**
 * Command-line entry: parse the config, then run a command: `serve` (the
 * relay, the default), `demo` (the relay with simulated peers), `status`
 * (ask a running relay) or `drain` (drain one and wait until it is empty).
 * The only module that reads process.env, and only to
 * hand it to loadConfig. The relay and the demo are imported when their
 * command runs, so --help, --version, status and drain do not load them.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parseDrainArgs, runDrain } from "./cli/drain.ts";
import { helpText } from "./cli/help.ts";
import { firstShutdownSignal, onReloadSignal, stopWithin } from "./cli/signals.ts";
import { parseStatusArgs, runStatus } from "./cli/status.ts";
import { type Config, type ConfigIo, loadConfig, rereadSecrets } from "./config/config.ts";
import { VERSION, versionLine } from "./version.ts";

const EXIT_BAD_CONFIG = 2;

const out = (line: string): void => console.log(line);
const err = (line: string): void => console.error(line);

/**
 * Shutdown order (relay-server.ts stop()): stop accepting, close daemons with
 * 1001, close the upstream link with 1000 (the outbox is durable, so nothing
 * accepted is lost), wait for the server, checkpoint and close the database.
 */
async function serve(config: Config, argv: readonly string[], io: ConfigIo): Promise<number> {
  // Listening before the start, so that a signal during it still gets a clean stop.
  const shutdown = firstShutdownSignal();
  const { startRelayServer } = await import("./relay-server.ts");
  const relay = await startRelayServer(config, {
    rereadSecrets: () => rereadSecrets(process.env, argv, io),
  });
  const stopReloading = onReloadSignal(() => relay.reload());
  const signal = await shutdown;
  stopReloading();
  relay.log.log("info", "shutdown", { signal });
  await stopWithin(
    () => relay.stop(),
    () => relay.log.log("error", "shutdown_timeout", { error: "stop did not finish in time" }),
  );
  return 0;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    out(helpText(VERSION));
    return 0;
  }
  if (argv.includes("--version") || argv.includes("-v")) {
    out(versionLine());
    return 0;
  }
  const configIo = {
    readFile: (p: string) => readFileSync(p, "utf8"),
    cwd: process.cwd(),
    hostname: hostname(),
  };
  const loaded = loadConfig(process.env, argv, configIo);
  if (!loaded.ok) {
    err(`makima-relay: ${loaded.error}`);
    return EXIT_BAD_CONFIG;
  }
  const { config, rest } = loaded.value;
  const [command = "serve", ...args] = rest;
  switch (command) {
    case "serve":
      if (args.length === 0) return serve(config, argv, configIo);
      break;
    case "demo": {
      const { runDemoCommand } = await import("./cli/demo.ts");
      return runDemoCommand({ env: process.env, argv, args, configIo, out, err });
    }
    case "status": {
      const parsed = parseStatusArgs(args, `http://127.0.0.1:${config.port}`);
      if (!parsed.ok) {
        err(`makima-relay: ${parsed.error}`);
        return EXIT_BAD_CONFIG;
      }
      return runStatus(parsed.value, { out, err, token: config.adminToken });
    }
    case "drain": {
      const parsed = parseDrainArgs(args, {
        url: `http://127.0.0.1:${config.port}`,
        token: config.adminToken,
      });
      if (!parsed.ok) {
        err(`makima-relay: ${parsed.error}`);
        return EXIT_BAD_CONFIG;
      }
      return runDrain(parsed.value, { out, err });
    }
  }
  err(`makima-relay: unknown command or option "${rest.join(" ")}" (see --help)`);
  return EXIT_BAD_CONFIG;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    err(`makima-relay: ${(error as Error).message}`);
    process.exit(1);
  },
);
