#!/usr/bin/env bun
/** Command-line entry: parse the config, run the relay, stop cleanly on a signal. */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { loadConfig } from "./config/config.ts";
import { helpText } from "./config/help.ts";
import { startRelayServer } from "./relay-server.ts";
import { VERSION } from "./version.ts";

const EXIT_BAD_CONFIG = 2;

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(helpText(VERSION));
    return 0;
  }
  if (argv.includes("--version") || argv.includes("-v")) {
    console.log(VERSION);
    return 0;
  }
  const loaded = loadConfig(process.env, argv, {
    readFile: (p) => readFileSync(p, "utf8"),
    cwd: process.cwd(),
    hostname: hostname(),
  });
  if (!loaded.ok) {
    console.error(`makima-relay: ${loaded.message}`);
    return EXIT_BAD_CONFIG;
  }
  const command = loaded.rest[0] ?? "serve";
  if (command !== "serve" || loaded.rest.length > 1) {
    console.error(
      `makima-relay: unknown command or option "${loaded.rest.join(" ")}" (see --help)`,
    );
    return EXIT_BAD_CONFIG;
  }
  const relay = await startRelayServer(loaded.config);
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (signal: string): void => {
      signals += 1;
      if (signals > 1) process.exit(130);
      relay.log.log("info", "shutdown", { signal });
      relay.stop().then(resolve, resolve);
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`makima-relay: ${(err as Error).message}`);
    process.exit(1);
  },
);
