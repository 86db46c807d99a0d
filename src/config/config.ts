/**
 * Configuration in one place: environment and flags (flags win), validated
 * at start. Nothing else in the program reads process.env.
 */
import { hostname as osHostname } from "node:os";
import { resolve } from "node:path";
import { err, ok, type Result } from "../protocol/result.ts";
import { flagName, OPTIONS, type OptionSpec, type OptionValues } from "./options.ts";

/** Values worked out at start from other values, not read as they are. */
interface Derived {
  /** This machine's name (not an option). */
  hostname: string;
  /** Unset or empty: `makima-relay-<hostname>`. */
  agentName: string;
  /** Unset: twice the rate, so raising the rate alone raises the burst too. */
  daemonBurst: number;
  daemonByteBurst: number;
}

/** Every option's value (options.ts), with the derived ones filled in. */
export type Config = {
  [K in keyof OptionValues | keyof Derived]: K extends keyof Derived
    ? Derived[K]
    : K extends keyof OptionValues
      ? OptionValues[K]
      : never;
};

/** The config and the words left over (the sub-command and its arguments), or why not. */
export type ConfigResult = Result<{ config: Config; rest: string[] }, string>;

export interface ConfigIo {
  readFile(path: string): string;
  cwd: string;
  hostname?: string;
}

class ConfigError extends Error {}

const fail = (spec: OptionSpec, why: string): never => {
  throw new ConfigError(`${spec.env} (${flagName(spec.env)}): ${why}`);
};

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

/** Where a setting's text comes from, in order of precedence (flags, then env). */
type Source = (name: string) => string | undefined;

function readSecret(spec: OptionSpec, file: string, io: ConfigIo): string {
  try {
    return io.readFile(resolve(io.cwd, file)).replace(/\r?\n$/, "");
  } catch {
    return fail(spec, `cannot read ${spec.env}_FILE ${file}`);
  }
}

/** The first source that sets the option wins; within one, a value wins over its *_FILE, unless it is empty. */
function rawValue(spec: OptionSpec, sources: readonly Source[], io: ConfigIo): string | undefined {
  for (const source of sources) {
    const value = [spec.env, ...(spec.aliases ?? [])].map(source).find((v) => v !== undefined);
    const file = spec.fromFile ? source(`${spec.env}_FILE`) : undefined;
    if (value !== undefined && (value !== "" || !file)) return value;
    if (file) return readSecret(spec, file, io);
  }
  return undefined;
}

/** An option's value from its text: unset (or empty, unless the kind keeps it) means the default. */
function readOption(spec: OptionSpec, raw: string | undefined): unknown {
  const unset = raw === undefined || (raw === "" && !spec.kind.keepsEmpty);
  const text = unset ? (spec.computed ? null : spec.default) : raw;
  if (text === null) return spec.kind.unset?.() ?? null;
  return spec.kind.parse(text, {
    fail: (why) => fail(spec, why),
    shown: spec.secret ? "***" : text,
  });
}

function readOptions(sources: readonly Source[], io: ConfigIo): OptionValues {
  const values: Record<string, unknown> = {};
  for (const spec of OPTIONS) values[spec.key] = readOption(spec, rawValue(spec, sources, io));
  // Each value came from its option's kind, which is the type OptionValues gives it.
  return values as OptionValues;
}

function derive(values: OptionValues, io: ConfigIo): Config {
  const hostname = io.hostname ?? osHostname();
  const { dbPath } = values;
  return {
    ...values,
    hostname,
    agentName: values.agentName || `makima-relay-${hostname}`,
    dbPath: dbPath === ":memory:" ? dbPath : resolve(io.cwd, dbPath),
    daemonBurst: values.daemonBurst ?? 2 * values.daemonRate,
    daemonByteBurst: values.daemonByteBurst ?? 2 * values.daemonByteRate,
  };
}

/** Rules between options, checked once each has its value. */
function checkTogether(config: Config): void {
  if ((config.tlsCert === null) !== (config.tlsKey === null)) {
    throw new ConfigError("MAKIMA_RELAY_TLS_CERT and MAKIMA_RELAY_TLS_KEY must be set together");
  }
  if (config.reconnectMaxMs < config.reconnectBaseMs) {
    throw new ConfigError(
      "MAKIMA_RELAY_RECONNECT_MAX_MS must not be below MAKIMA_RELAY_RECONNECT_BASE_MS",
    );
  }
}

export function loadConfig(
  env: Record<string, string | undefined>,
  argv: readonly string[],
  io: ConfigIo,
): ConfigResult {
  try {
    const { values: flags, rest } = readFlags(argv);
    const config = derive(readOptions([(k) => flags.get(k), (k) => env[k]], io), io);
    checkTogether(config);
    return ok({ config, rest });
  } catch (error) {
    if (error instanceof ConfigError) return err(error.message);
    throw error;
  }
}

/** The settings a running relay re-reads on SIGHUP or POST /admin/reload. */
export type Secrets = Pick<Config, "apiKey" | "daemonKeys" | "adminToken">;

export interface SecretsReread {
  /** Each secret as its source says now; one that could not be read is absent (keep the old). */
  secrets: Partial<Secrets>;
  /** One line per secret that could not be read, naming its variable and file. */
  errors: string[];
}

/**
 * The secrets as their sources say now. Each is read on its own, so an
 * unreadable or invalid file costs only its own secret (which keeps its old
 * value); the environment and flags are those the relay started with, so in
 * practice what changes is the content of the `*_FILE` files.
 */
export function rereadSecrets(
  env: Record<string, string | undefined>,
  argv: readonly string[],
  io: ConfigIo,
): SecretsReread {
  const { values: flags } = readFlags(argv);
  const sources: Source[] = [(k) => flags.get(k), (k) => env[k]];
  const secrets: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const spec of OPTIONS.filter((o) => o.fromFile)) {
    try {
      secrets[spec.key] = readOption(spec, rawValue(spec, sources, io));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      errors.push(error.message);
    }
  }
  // Each value came from its option's kind, as in readOptions.
  return { secrets: secrets as Partial<Secrets>, errors };
}

/** Why the upstream link cannot start, or null when it can. */
export function upstreamProblem(config: Config): string | null {
  if (!config.serverUrl && !config.apiKey)
    return "MAKIMA_SERVER_URL and MAKIMA_API_KEY are not set";
  if (!config.serverUrl) return "MAKIMA_SERVER_URL is not set";
  if (!config.apiKey) return "MAKIMA_API_KEY is not set";
  return null;
}
