/**
 * Every setting, once: its `Config` field, its environment variable, its
 * flag, how its text is read, its default and its help text. Flags are
 * derived from the variable names (MAKIMA_RELAY_PORT → --port,
 * MAKIMA_SERVER_URL → --server-url); the type of each option's value is
 * derived from its kind and default (OptionValues below), so a key that is
 * not in this table does not compile.
 */
import { KINDS, type OptionKind } from "./option-kinds.ts";

export interface OptionSpec {
  /** The field of `Config` it sets. */
  key: string;
  env: string;
  kind: OptionKind<unknown>;
  /** Shown in --help; `null` means unset. Secrets never show a value. */
  default: string | null;
  /** The default is worked out at start (config.ts); `default` only describes it. */
  computed?: boolean;
  help: string;
  group: "Upstream" | "Daemons" | "Storage" | "HTTP and security" | "Logging";
  secret?: boolean;
  /** Reads the value from the file named by `${env}_FILE` as well. */
  fromFile?: boolean;
  /** Other variables read when `env` is unset (the lower-case forms of HTTPS_PROXY and the like). */
  aliases?: readonly string[];
}

const TABLE = [
  {
    key: "serverUrl",
    env: "MAKIMA_SERVER_URL",
    kind: KINDS.url,
    default: null,
    group: "Upstream",
    help: "Makima server URL (ws, wss, http or https); /ws/daemon is appended if missing",
  },
  {
    key: "apiKey",
    env: "MAKIMA_API_KEY",
    kind: KINDS.optionalText,
    default: null,
    group: "Upstream",
    secret: true,
    fromFile: true,
    help: "API key for the server; daemons may use it too",
  },
  {
    key: "agentName",
    env: "MAKIMA_AGENT_NAME",
    kind: KINDS.text,
    computed: true,
    default: "makima-relay-<hostname>",
    group: "Upstream",
    help: "name shown in /status",
  },
  {
    key: "heartbeatMs",
    env: "MAKIMA_RELAY_HEARTBEAT_MS",
    kind: KINDS.ms,
    default: "30000",
    group: "Upstream",
    help: "interval of the relay's heartbeat to the server",
  },
  {
    key: "reconnectBaseMs",
    env: "MAKIMA_RELAY_RECONNECT_BASE_MS",
    kind: KINDS.ms,
    default: "1000",
    group: "Upstream",
    help: "first reconnect delay (doubles per attempt, plus jitter)",
  },
  {
    key: "reconnectMaxMs",
    env: "MAKIMA_RELAY_RECONNECT_MAX_MS",
    kind: KINDS.ms,
    default: "60000",
    group: "Upstream",
    help: "longest reconnect delay",
  },
  {
    key: "maxReconnects",
    env: "MAKIMA_RELAY_MAX_RECONNECTS",
    kind: KINDS.count,
    default: null,
    group: "Upstream",
    help: "give up after this many attempts (default: never)",
  },
  {
    key: "connectTimeoutMs",
    env: "MAKIMA_RELAY_CONNECT_TIMEOUT_MS",
    kind: KINDS.ms,
    default: "10000",
    group: "Upstream",
    help: "time to open and authenticate the upstream link",
  },
  {
    key: "advertiseCapacity",
    env: "MAKIMA_RELAY_ADVERTISE_CAPACITY",
    kind: KINDS.capacity,
    default: "0",
    group: "Upstream",
    help: "maxConcurrentTasks the relay announces upstream: a number, or auto",
  },
  {
    key: "upstreamCa",
    env: "MAKIMA_RELAY_UPSTREAM_CA",
    kind: KINDS.text,
    default: null,
    group: "Upstream",
    help: "PEM file of a private CA trusted for a wss:// server",
  },
  {
    key: "upstreamProxy",
    env: "MAKIMA_RELAY_UPSTREAM_PROXY",
    kind: KINDS.proxyUrl,
    default: null,
    group: "Upstream",
    secret: true,
    help: "HTTP proxy (http://[user:pass@]host:port) for the upstream link, loopback included; overrides the 3 below",
  },
  {
    key: "httpsProxy",
    env: "HTTPS_PROXY",
    aliases: ["https_proxy"],
    kind: KINDS.proxyUrl,
    default: null,
    group: "Upstream",
    secret: true,
    help: "HTTP proxy for a wss:// server; never for loopback or NO_PROXY hosts",
  },
  {
    key: "httpProxy",
    env: "HTTP_PROXY",
    aliases: ["http_proxy"],
    kind: KINDS.proxyUrl,
    default: null,
    group: "Upstream",
    secret: true,
    help: "HTTP proxy for a ws:// server; never for loopback or NO_PROXY hosts",
  },
  {
    key: "noProxy",
    env: "NO_PROXY",
    aliases: ["no_proxy"],
    kind: KINDS.list,
    default: null,
    group: "Upstream",
    help: "servers reached without HTTPS_PROXY/HTTP_PROXY: host suffixes, host:port, or *, comma separated",
  },
  {
    key: "daemonKeys",
    env: "MAKIMA_RELAY_DAEMON_KEYS",
    kind: KINDS.list,
    default: null,
    group: "Daemons",
    secret: true,
    fromFile: true,
    help: "extra API keys daemons may use, comma separated",
  },
  {
    key: "authTimeoutMs",
    env: "MAKIMA_RELAY_AUTH_TIMEOUT_MS",
    kind: KINDS.ms,
    default: "10000",
    group: "Daemons",
    help: "time a daemon has to send authenticate",
  },
  {
    key: "daemonTimeoutMs",
    env: "MAKIMA_RELAY_DAEMON_TIMEOUT_MS",
    kind: KINDS.ms,
    default: "90000",
    group: "Daemons",
    help: "a daemon silent this long is closed (4408)",
  },
  {
    key: "graceMs",
    env: "MAKIMA_RELAY_GRACE_MS",
    kind: KINDS.ms,
    default: "60000",
    group: "Daemons",
    help: "how long a gone daemon's tasks wait for it to come back",
  },
  {
    key: "maxFrameBytes",
    env: "MAKIMA_RELAY_MAX_FRAME_BYTES",
    kind: KINDS.bytes,
    default: "1048576",
    group: "Daemons",
    help: "largest frame accepted; larger closes with 1009",
  },
  {
    key: "daemonRate",
    env: "MAKIMA_RELAY_DAEMON_RATE",
    kind: KINDS.count,
    default: "1000",
    group: "Daemons",
    help: "frames per second a daemon may send; faster ones are read more slowly, never dropped (child relays are exempt)",
  },
  {
    key: "daemonBurst",
    env: "MAKIMA_RELAY_DAEMON_BURST",
    kind: KINDS.count,
    // Unset: twice the rate (config.ts), so raising the rate alone raises the burst too.
    default: null,
    group: "Daemons",
    help: "frames a daemon may send at once before it is slowed (default: twice the rate)",
  },
  {
    key: "daemonByteRate",
    env: "MAKIMA_RELAY_DAEMON_BYTE_RATE",
    kind: KINDS.bytes,
    default: "2097152",
    group: "Daemons",
    help: "bytes per second a daemon may send; faster ones are read more slowly, never dropped (child relays are exempt)",
  },
  {
    key: "daemonByteBurst",
    env: "MAKIMA_RELAY_DAEMON_BYTE_BURST",
    kind: KINDS.bytes,
    // Unset: twice the byte rate (config.ts), like the frame burst.
    default: null,
    group: "Daemons",
    help: "bytes a daemon may send at once before it is slowed (default: twice the byte rate)",
  },
  {
    key: "maxUnauthenticated",
    env: "MAKIMA_RELAY_MAX_UNAUTHENTICATED",
    kind: KINDS.count,
    default: "256",
    group: "Daemons",
    help: "sockets awaiting authenticate at once; more get HTTP 503",
  },
  {
    key: "maxUnauthenticatedPerAddress",
    env: "MAKIMA_RELAY_MAX_UNAUTHENTICATED_PER_ADDRESS",
    kind: KINDS.count,
    default: "32",
    group: "Daemons",
    help: "of them, from one source address (an IPv6 /64 counts as one); more get HTTP 503",
  },
  {
    key: "dbPath",
    env: "MAKIMA_RELAY_DB",
    kind: KINDS.text,
    default: "makima-relay.db",
    group: "Storage",
    help: "SQLite database file (:memory: allowed)",
  },
  {
    key: "dbSynchronous",
    env: "MAKIMA_RELAY_DB_SYNCHRONOUS",
    kind: KINDS.synchronous,
    default: "normal",
    group: "Storage",
    help: "normal (survives a process crash) or full (fsync each commit: survives power loss)",
  },
  {
    key: "logKeep",
    env: "MAKIMA_RELAY_LOG_KEEP",
    kind: KINDS.count,
    default: "200",
    group: "Storage",
    help: "connection-log rows kept",
  },
  {
    key: "historyKeep",
    env: "MAKIMA_RELAY_HISTORY_KEEP",
    kind: KINDS.count,
    default: "100000",
    group: "Storage",
    help: "finished tasks kept in history",
  },
  {
    key: "outboxMaxBytes",
    env: "MAKIMA_RELAY_OUTBOX_MAX_BYTES",
    kind: KINDS.bytes,
    default: "67108864",
    group: "Storage",
    help: "size limit of the upstream outbox",
  },
  {
    key: "host",
    env: "MAKIMA_RELAY_HOST",
    kind: KINDS.text,
    default: "0.0.0.0",
    group: "HTTP and security",
    help: "address to listen on",
  },
  {
    key: "port",
    env: "MAKIMA_RELAY_PORT",
    kind: KINDS.port,
    default: "8787",
    group: "HTTP and security",
    help: "port for HTTP and /ws/daemon",
  },
  {
    key: "tlsCert",
    env: "MAKIMA_RELAY_TLS_CERT",
    kind: KINDS.optionalText,
    default: null,
    group: "HTTP and security",
    help: "PEM certificate file: serve HTTPS and WSS",
  },
  {
    key: "tlsKey",
    env: "MAKIMA_RELAY_TLS_KEY",
    kind: KINDS.optionalText,
    default: null,
    group: "HTTP and security",
    help: "PEM private key file for MAKIMA_RELAY_TLS_CERT",
  },
  {
    key: "adminToken",
    env: "MAKIMA_RELAY_ADMIN_TOKEN",
    kind: KINDS.optionalText,
    default: null,
    group: "HTTP and security",
    secret: true,
    fromFile: true,
    help: "bearer token for write routes (without it they answer loopback only)",
  },
  {
    key: "corsOrigins",
    env: "MAKIMA_RELAY_CORS_ORIGINS",
    kind: KINDS.list,
    default: null,
    group: "HTTP and security",
    help: "origins allowed by CORS, comma separated; * for read routes only",
  },
  {
    key: "protectReads",
    env: "MAKIMA_RELAY_PROTECT_READS",
    kind: KINDS.bool,
    default: "false",
    group: "HTTP and security",
    help: "require the admin token for read routes too (/health stays open)",
  },
  {
    key: "logLevel",
    env: "MAKIMA_RELAY_LOG_LEVEL",
    kind: KINDS.level,
    default: "info",
    group: "Logging",
    help: "debug, info, warn or error",
  },
] as const satisfies readonly OptionSpec[];

/** The table as the rest of the program reads it (help, flags, docs tests). */
export const OPTIONS: readonly OptionSpec[] = TABLE;

type Option = (typeof TABLE)[number];
/** What an option reads as: its kind's value, or what it is when left unset without a default. */
type ValueOf<O extends Option> =
  | ReturnType<O["kind"]["parse"]>
  | (O["default"] extends null ? (O["kind"] extends { unset: () => infer U } ? U : null) : never)
  | (O extends { computed: true } ? null : never);

/** Every option's value, by its `Config` field. */
export type OptionValues = { [O in Option as O["key"]]: ValueOf<O> };

export function flagName(env: string): string {
  return `--${env
    .replace(/^MAKIMA_(RELAY_)?/, "")
    .toLowerCase()
    .replaceAll("_", "-")}`;
}
