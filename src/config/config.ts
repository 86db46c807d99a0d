/**
 * Configuration in one place: environment and flags (flags win), validated
 * at start. Nothing else in the program reads process.env.
 */
import { hostname as osHostname } from "node:os";
import { resolve } from "node:path";
import type { LogLevel } from "../core/ports.ts";
import { MAX_CAPACITY } from "../protocol/messages.ts";
import { normaliseServerUrl } from "../protocol/url.ts";
import { flagName, OPTIONS, type OptionSpec } from "./options.ts";

export interface Config {
  serverUrl: string | null;
  apiKey: string | null;
  agentName: string;
  hostname: string;
  host: string;
  port: number;
  dbPath: string;
  daemonKeys: string[];
  heartbeatMs: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  maxReconnects: number | null;
  connectTimeoutMs: number;
  advertiseCapacity: number | "auto";
  upstreamCa: string | null;
  upstreamBatchWrites: boolean;
  authTimeoutMs: number;
  daemonTimeoutMs: number;
  graceMs: number;
  maxFrameBytes: number;
  dbSynchronous: "normal" | "full";
  logKeep: number;
  historyKeep: number;
  outboxMaxBytes: number;
  logLevel: LogLevel;
  daemonRate: number;
  daemonBurst: number;
  /** Bytes (characters of frame text) a second per daemon, and the burst above it. */
  daemonByteRate: number;
  daemonByteBurst: number;
  maxUnauthenticated: number;
  maxUnauthenticatedPerAddress: number;
  tlsCert: string | null;
  tlsKey: string | null;
  adminToken: string | null;
  corsOrigins: string[];
  protectReads: boolean;
}

export type ConfigResult =
  | { ok: true; config: Config; rest: string[] }
  | { ok: false; message: string };

export interface ConfigIo {
  readFile(path: string): string;
  cwd: string;
  hostname?: string;
}

class ConfigError extends Error {}

const fail = (spec: OptionSpec, why: string): never => {
  throw new ConfigError(`${spec.env} (${flagName(spec.env)}): ${why}`);
};

function parseValue(spec: OptionSpec, raw: string): string | number | string[] | null {
  const integer = (min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (!/^\d+$/.test(raw.trim()))
      fail(spec, `expected a whole number, got "${spec.secret ? "***" : raw}"`);
    const n = Number(raw.trim());
    if (n < min || n > max) fail(spec, `must be between ${min} and ${max}, got ${n}`);
    return n;
  };
  switch (spec.kind) {
    case "port":
      return integer(0, 65535);
    case "ms":
      return integer(1, 2_147_483_647);
    case "count":
      return integer(0);
    case "bytes":
      return integer(1024);
    case "capacity":
      return raw.trim() === "auto" ? "auto" : integer(0, MAX_CAPACITY);
    case "level":
      if (!["debug", "info", "warn", "error"].includes(raw))
        fail(spec, `expected debug, info, warn or error`);
      return raw;
    case "bool":
      if (!["true", "false", "1", "0", "yes", "no"].includes(raw.trim().toLowerCase()))
        fail(spec, "expected true or false");
      return ["true", "1", "yes"].includes(raw.trim().toLowerCase()) ? "true" : "";
    case "list":
      return raw
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    case "url": {
      if (raw.trim() === "") return null;
      const url = normaliseServerUrl(raw);
      if (!url.ok) fail(spec, url.error);
      return (url as { value: string }).value;
    }
    default:
      return raw;
  }
}

/** Splits argv into option values and the remaining words (sub-command, etc.). */
function readFlags(argv: readonly string[]): { values: Map<string, string>; rest: string[] } {
  // Each option's flag, plus `--…-file` for the secrets that can come from a file.
  const byFlag = new Map<string, { env: string }>();
  for (const o of OPTIONS) {
    byFlag.set(flagName(o.env), { env: o.env });
    if (o.fromFile) byFlag.set(`${flagName(o.env)}-file`, { env: `${o.env}_FILE` });
  }
  const values = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.startsWith("--") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const target = byFlag.get(flag as string);
    if (!target) {
      rest.push(arg);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`${flag}: missing value`);
    values.set(target.env, value);
  }
  return { values, rest };
}

export function loadConfig(
  env: Record<string, string | undefined>,
  argv: readonly string[],
  io: ConfigIo,
): ConfigResult {
  try {
    const { values: flags, rest } = readFlags(argv);
    const pick = (name: string): string | undefined => flags.get(name) ?? env[name];
    const readSecret = (spec: OptionSpec, file: string): string => {
      try {
        return io.readFile(resolve(io.cwd, file)).replace(/\r?\n$/, "");
      } catch {
        return fail(spec, `cannot read ${spec.env}_FILE ${file}`);
      }
    };
    // Flags win over env; within each source a value wins over its *_FILE, unless it is empty.
    const rawValue = (spec: OptionSpec): string | undefined => {
      for (const source of [(k: string) => flags.get(k), (k: string) => env[k]]) {
        const value = source(spec.env);
        const file = spec.fromFile ? source(`${spec.env}_FILE`) : undefined;
        if (value !== undefined && (value !== "" || !file)) return value;
        if (file) return readSecret(spec, file);
      }
      return undefined;
    };
    const get = (spec: OptionSpec): ReturnType<typeof parseValue> => {
      let raw = rawValue(spec);
      if (raw === undefined || (raw === "" && spec.kind !== "string"))
        raw = spec.default ?? undefined;
      return raw === undefined ? null : parseValue(spec, raw);
    };
    const parsed = new Map(OPTIONS.map((o) => [o.env, get(o)] as const));
    // Each value was checked against its spec's kind above; the casts only restate that.
    const v = <T = never>(key: string): T => parsed.get(key) as T;
    const host = io.hostname ?? osHostname();
    const dbPath: string = v("MAKIMA_RELAY_DB");
    const config: Config = {
      serverUrl: v("MAKIMA_SERVER_URL"),
      apiKey: v("MAKIMA_API_KEY") || null,
      agentName: pick("MAKIMA_AGENT_NAME") || `makima-relay-${host}`,
      hostname: host,
      host: v("MAKIMA_RELAY_HOST"),
      port: v("MAKIMA_RELAY_PORT"),
      dbPath: dbPath === ":memory:" ? dbPath : resolve(io.cwd, dbPath),
      daemonKeys: v("MAKIMA_RELAY_DAEMON_KEYS") ?? [],
      heartbeatMs: v("MAKIMA_RELAY_HEARTBEAT_MS"),
      reconnectBaseMs: v("MAKIMA_RELAY_RECONNECT_BASE_MS"),
      reconnectMaxMs: v("MAKIMA_RELAY_RECONNECT_MAX_MS"),
      maxReconnects: v("MAKIMA_RELAY_MAX_RECONNECTS"),
      connectTimeoutMs: v("MAKIMA_RELAY_CONNECT_TIMEOUT_MS"),
      advertiseCapacity: v("MAKIMA_RELAY_ADVERTISE_CAPACITY"),
      upstreamCa: v("MAKIMA_RELAY_UPSTREAM_CA"),
      upstreamBatchWrites: v("MAKIMA_RELAY_UPSTREAM_BATCH_WRITES") === "true",
      authTimeoutMs: v("MAKIMA_RELAY_AUTH_TIMEOUT_MS"),
      daemonTimeoutMs: v("MAKIMA_RELAY_DAEMON_TIMEOUT_MS"),
      graceMs: v("MAKIMA_RELAY_GRACE_MS"),
      maxFrameBytes: v("MAKIMA_RELAY_MAX_FRAME_BYTES"),
      dbSynchronous: v("MAKIMA_RELAY_DB_SYNCHRONOUS"),
      logKeep: v("MAKIMA_RELAY_LOG_KEEP"),
      historyKeep: v("MAKIMA_RELAY_HISTORY_KEEP"),
      outboxMaxBytes: v("MAKIMA_RELAY_OUTBOX_MAX_BYTES"),
      logLevel: v("MAKIMA_RELAY_LOG_LEVEL"),
      daemonRate: v("MAKIMA_RELAY_DAEMON_RATE"),
      daemonBurst: v("MAKIMA_RELAY_DAEMON_BURST") ?? 2 * v<number>("MAKIMA_RELAY_DAEMON_RATE"),
      daemonByteRate: v("MAKIMA_RELAY_DAEMON_BYTE_RATE"),
      daemonByteBurst:
        v("MAKIMA_RELAY_DAEMON_BYTE_BURST") ?? 2 * v<number>("MAKIMA_RELAY_DAEMON_BYTE_RATE"),
      maxUnauthenticated: v("MAKIMA_RELAY_MAX_UNAUTHENTICATED"),
      maxUnauthenticatedPerAddress: v("MAKIMA_RELAY_MAX_UNAUTHENTICATED_PER_ADDRESS"),
      tlsCert: v("MAKIMA_RELAY_TLS_CERT") || null,
      tlsKey: v("MAKIMA_RELAY_TLS_KEY") || null,
      adminToken: v("MAKIMA_RELAY_ADMIN_TOKEN") || null,
      corsOrigins: v("MAKIMA_RELAY_CORS_ORIGINS") ?? [],
      protectReads: v("MAKIMA_RELAY_PROTECT_READS") === "true",
    };
    if (config.dbSynchronous !== "normal" && config.dbSynchronous !== "full") {
      throw new ConfigError(
        "MAKIMA_RELAY_DB_SYNCHRONOUS (--db-synchronous): expected normal or full",
      );
    }
    if ((config.tlsCert === null) !== (config.tlsKey === null)) {
      throw new ConfigError("MAKIMA_RELAY_TLS_CERT and MAKIMA_RELAY_TLS_KEY must be set together");
    }
    if (config.reconnectMaxMs < config.reconnectBaseMs) {
      throw new ConfigError(
        "MAKIMA_RELAY_RECONNECT_MAX_MS must not be below MAKIMA_RELAY_RECONNECT_BASE_MS",
      );
    }
    return { ok: true, config, rest };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, message: err.message };
    throw err;
  }
}

/** Why the upstream link cannot start, or null when it can. */
export function upstreamProblem(config: Config): string | null {
  if (!config.serverUrl && !config.apiKey)
    return "MAKIMA_SERVER_URL and MAKIMA_API_KEY are not set";
  if (!config.serverUrl) return "MAKIMA_SERVER_URL is not set";
  if (!config.apiKey) return "MAKIMA_API_KEY is not set";
  return null;
}
