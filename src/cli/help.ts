import { flagName, OPTIONS } from "../config/options.ts";
import { DEMO_USAGE } from "./demo-args.ts";

/** --help text: commands, then every option grouped, with its default. Never a secret's value. */
export function helpText(version: string): string {
  const lines = [
    `makima-relay ${version}: edge relay between a Makima server and Makima daemons`,
    "",
    "Usage: makima-relay [command] [options]",
    "",
    "Commands:",
    "  serve            run the relay (default)",
    "  demo             run the relay with a simulated Makima server and 3 simulated daemons",
    "                   in this process; open the dashboard URL it prints. Uses a temporary",
    "                   database unless MAKIMA_RELAY_DB is set, and logs at warn level unless",
    "                   MAKIMA_RELAY_LOG_LEVEL is set. Ctrl-C stops it. Demo options:",
    ...DEMO_USAGE.map((line) => `  ${line}`),
    "  status [--url URL]",
    "                   print a running relay's /status as a table (default URL",
    "                   http://127.0.0.1:<port>); exit 0 ok, 1 degraded or disconnected,",
    "                   2 unreachable",
    "  drain [--url URL] [--token T] [--timeout-ms N]",
    "                   drain a running relay (POST /drain: not ready, capacity 0 upstream in",
    "                   auto mode), then wait until it holds no task and nothing for its",
    "                   server; exit 0 drained, 1 not within N ms (default 300000), 2",
    "                   unreachable or refused. The token defaults to MAKIMA_RELAY_ADMIN_TOKEN",
    "  --help, -h       show this help",
    "  --version, -v    print the version",
    "",
    "Pages: /dashboard (live view), /swagger (API docs), /status, /health.",
    "",
    "Signals: SIGTERM or SIGINT stops cleanly; SIGHUP (or POST /admin/reload) re-reads the",
    "*_FILE secrets and the TLS certificate and key without a restart (a daemon whose key is",
    "no longer accepted is closed with 4401).",
    "",
    "Options (flag or environment variable; flags win):",
  ];
  const groups = [...new Set(OPTIONS.map((o) => o.group))];
  for (const group of groups) {
    lines.push("", `  ${group}:`);
    for (const o of OPTIONS.filter((x) => x.group === group)) {
      const dflt = o.secret ? "secret; unset" : o.default === null ? "unset" : o.default;
      lines.push(`    ${flagName(o.env).padEnd(24)} ${o.env.padEnd(34)} ${o.help} [${dflt}]`);
      if (o.fromFile)
        lines.push(
          `    ${`${flagName(o.env)}-file`.padEnd(24)} ${`${o.env}_FILE`.padEnd(34)} read it from this file instead`,
        );
    }
  }
  return lines.join("\n");
}
