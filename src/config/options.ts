/**
 * Every setting, once: its environment variable, its flag, its default and
 * its help text. Flags are derived from the variable names
 * (MAKIMA_RELAY_PORT → --port, MAKIMA_SERVER_URL → --server-url).
 */
export type OptionKind =
  | "string"
  | "url"
  | "port"
  | "ms"
  | "count"
  | "bytes"
  | "list"
  | "level"
  | "capacity"
  | "bool";

export interface OptionSpec {
  env: string;
  kind: OptionKind;
  /** Shown in --help; `null` means unset. Secrets never show a value. */
  default: string | null;
  help: string;
  group: "Upstream" | "Daemons" | "Storage" | "HTTP and security" | "Logging";
  secret?: boolean;
  /** Reads the value from the file named by `${env}_FILE` as well. */
  fromFile?: boolean;
}

export const OPTIONS: readonly OptionSpec[] = [
  {
    env: "MAKIMA_SERVER_URL",
    kind: "url",
    default: null,
    group: "Upstream",
    help: "Makima server URL (ws, wss, http or https); /ws/daemon is appended if missing",
  },
  {
    env: "MAKIMA_API_KEY",
    kind: "string",
    default: null,
    group: "Upstream",
    secret: true,
    fromFile: true,
    help: "API key for the server; daemons may use it too",
  },
  {
    env: "MAKIMA_AGENT_NAME",
    kind: "string",
    default: "makima-relay-<hostname>",
    group: "Upstream",
    help: "name shown in /status",
  },
  {
    env: "MAKIMA_RELAY_HEARTBEAT_MS",
    kind: "ms",
    default: "30000",
    group: "Upstream",
    help: "interval of the relay's heartbeat to the server",
  },
  {
    env: "MAKIMA_RELAY_RECONNECT_BASE_MS",
    kind: "ms",
    default: "1000",
    group: "Upstream",
    help: "first reconnect delay (doubles per attempt, plus jitter)",
  },
  {
    env: "MAKIMA_RELAY_RECONNECT_MAX_MS",
    kind: "ms",
    default: "60000",
    group: "Upstream",
    help: "longest reconnect delay",
  },
  {
    env: "MAKIMA_RELAY_MAX_RECONNECTS",
    kind: "count",
    default: null,
    group: "Upstream",
    help: "give up after this many attempts (default: never)",
  },
  {
    env: "MAKIMA_RELAY_CONNECT_TIMEOUT_MS",
    kind: "ms",
    default: "10000",
    group: "Upstream",
    help: "time to open and authenticate the upstream link",
  },
  {
    env: "MAKIMA_RELAY_ADVERTISE_CAPACITY",
    kind: "capacity",
    default: "0",
    group: "Upstream",
    help: "maxConcurrentTasks the relay announces upstream: a number, or auto",
  },
  {
    env: "MAKIMA_RELAY_UPSTREAM_CA",
    kind: "string",
    default: null,
    group: "Upstream",
    help: "PEM file of a private CA trusted for a wss:// server",
  },
  {
    env: "MAKIMA_RELAY_UPSTREAM_BATCH_WRITES",
    kind: "bool",
    default: "false",
    group: "Upstream",
    help: "send each turn's frames upstream in one write (own framing instead of Bun's WebSocket client)",
  },
  {
    env: "MAKIMA_RELAY_DAEMON_KEYS",
    kind: "list",
    default: null,
    group: "Daemons",
    secret: true,
    fromFile: true,
    help: "extra API keys daemons may use, comma separated",
  },
  {
    env: "MAKIMA_RELAY_AUTH_TIMEOUT_MS",
    kind: "ms",
    default: "10000",
    group: "Daemons",
    help: "time a daemon has to send authenticate",
  },
  {
    env: "MAKIMA_RELAY_DAEMON_TIMEOUT_MS",
    kind: "ms",
    default: "90000",
    group: "Daemons",
    help: "a daemon silent this long is closed (4408)",
  },
  {
    env: "MAKIMA_RELAY_GRACE_MS",
    kind: "ms",
    default: "60000",
    group: "Daemons",
    help: "how long a gone daemon's tasks wait for it to come back",
  },
  {
    env: "MAKIMA_RELAY_MAX_FRAME_BYTES",
    kind: "bytes",
    default: "1048576",
    group: "Daemons",
    help: "largest frame accepted; larger closes with 1009",
  },
  {
    env: "MAKIMA_RELAY_DAEMON_RATE",
    kind: "count",
    default: "1000",
    group: "Daemons",
    help: "frames per second a daemon may send; faster ones are read more slowly, never dropped (child relays are exempt)",
  },
  {
    env: "MAKIMA_RELAY_DAEMON_BURST",
    kind: "count",
    // Unset: twice the rate (config.ts), so raising the rate alone raises the burst too.
    default: null,
    group: "Daemons",
    help: "frames a daemon may send at once before it is slowed (default: twice the rate)",
  },
  {
    env: "MAKIMA_RELAY_DAEMON_BYTE_RATE",
    kind: "bytes",
    default: "2097152",
    group: "Daemons",
    help: "bytes per second a daemon may send; faster ones are read more slowly, never dropped (child relays are exempt)",
  },
  {
    env: "MAKIMA_RELAY_DAEMON_BYTE_BURST",
    kind: "bytes",
    // Unset: twice the byte rate (config.ts), like the frame burst.
    default: null,
    group: "Daemons",
    help: "bytes a daemon may send at once before it is slowed (default: twice the byte rate)",
  },
  {
    env: "MAKIMA_RELAY_MAX_UNAUTHENTICATED",
    kind: "count",
    default: "256",
    group: "Daemons",
    help: "sockets awaiting authenticate at once; more get HTTP 503",
  },
  {
    env: "MAKIMA_RELAY_MAX_UNAUTHENTICATED_PER_ADDRESS",
    kind: "count",
    default: "32",
    group: "Daemons",
    help: "of them, from one source address (an IPv6 /64 counts as one); more get HTTP 503",
  },
  {
    env: "MAKIMA_RELAY_DB",
    kind: "string",
    default: "makima-relay.db",
    group: "Storage",
    help: "SQLite database file (:memory: allowed)",
  },
  {
    env: "MAKIMA_RELAY_DB_SYNCHRONOUS",
    kind: "string",
    default: "normal",
    group: "Storage",
    help: "normal (survives a process crash) or full (fsync each commit: survives power loss)",
  },
  {
    env: "MAKIMA_RELAY_LOG_KEEP",
    kind: "count",
    default: "200",
    group: "Storage",
    help: "connection-log rows kept",
  },
  {
    env: "MAKIMA_RELAY_HISTORY_KEEP",
    kind: "count",
    default: "100000",
    group: "Storage",
    help: "finished tasks kept in history",
  },
  {
    env: "MAKIMA_RELAY_OUTBOX_MAX_BYTES",
    kind: "bytes",
    default: "67108864",
    group: "Storage",
    help: "size limit of the upstream outbox",
  },
  {
    env: "MAKIMA_RELAY_HOST",
    kind: "string",
    default: "0.0.0.0",
    group: "HTTP and security",
    help: "address to listen on",
  },
  {
    env: "MAKIMA_RELAY_PORT",
    kind: "port",
    default: "8787",
    group: "HTTP and security",
    help: "port for HTTP and /ws/daemon",
  },
  {
    env: "MAKIMA_RELAY_TLS_CERT",
    kind: "string",
    default: null,
    group: "HTTP and security",
    help: "PEM certificate file: serve HTTPS and WSS",
  },
  {
    env: "MAKIMA_RELAY_TLS_KEY",
    kind: "string",
    default: null,
    group: "HTTP and security",
    help: "PEM private key file for MAKIMA_RELAY_TLS_CERT",
  },
  {
    env: "MAKIMA_RELAY_ADMIN_TOKEN",
    kind: "string",
    default: null,
    group: "HTTP and security",
    secret: true,
    fromFile: true,
    help: "bearer token for write routes (without it they answer loopback only)",
  },
  {
    env: "MAKIMA_RELAY_CORS_ORIGINS",
    kind: "list",
    default: null,
    group: "HTTP and security",
    help: "origins allowed by CORS, comma separated; * for read routes only",
  },
  {
    env: "MAKIMA_RELAY_PROTECT_READS",
    kind: "bool",
    default: "false",
    group: "HTTP and security",
    help: "require the admin token for read routes too (/health stays open)",
  },
  {
    env: "MAKIMA_RELAY_LOG_LEVEL",
    kind: "level",
    default: "info",
    group: "Logging",
    help: "debug, info, warn or error",
  },
];

export function flagName(env: string): string {
  return `--${env
    .replace(/^MAKIMA_(RELAY_)?/, "")
    .toLowerCase()
    .replaceAll("_", "-")}`;
}
