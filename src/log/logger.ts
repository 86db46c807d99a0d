/**
 * One JSON object per line on stdout: {level, time, event, ...}. Connection
 * events also go to the connection_log table. Configured secrets are masked in
 * every line as a last line of defence; the code never logs them on purpose.
 */
import type { Clock } from "../core/clock.ts";
import type { ConnectionLogStore, EventLog, LogLevel } from "../core/ports.ts";
import { boundText, LOG_DETAILS_MAX_BYTES } from "../core/text-bound.ts";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level: LogLevel;
  clock: Clock;
  write(line: string): void;
  secrets?: readonly string[];
}

export interface Logger extends EventLog {
  /** Attaches the connection-log table once the database is open. */
  attach(store: ConnectionLogStore): void;
  /**
   * Masks these too from now on (secrets re-read at a reload). The old ones
   * stay masked: a revoked key is still a secret.
   */
  addSecrets(secrets: readonly string[]): void;
}

/** Shorter values are not masked: they would mask ordinary words. */
const MIN_SECRET_LENGTH = 4;

export function createLogger(opts: LoggerOptions): Logger {
  let store: ConnectionLogStore | null = null;
  const secrets = new Set<string>();
  const addSecrets = (list: readonly string[]): void => {
    for (const s of list) if (s.length >= MIN_SECRET_LENGTH) secrets.add(s);
  };
  addSecrets(opts.secrets ?? []);
  const mask = (text: string): string => {
    let out = text;
    for (const s of secrets) if (out.includes(s)) out = out.replaceAll(s, "[redacted]");
    return out;
  };
  const emit = (level: LogLevel, event: string, fields?: Record<string, unknown>): void => {
    if (RANK[level] < RANK[opts.level]) return;
    const line = JSON.stringify({
      level,
      time: new Date(opts.clock.now()).toISOString(),
      event,
      ...fields,
    });
    opts.write(secrets.size > 0 ? mask(line) : line);
  };
  return {
    attach(s) {
      store = s;
    },
    addSecrets,
    log: emit,
    connection(event, details, level = "info", options) {
      // Masked first, so that no cut can leave half a secret unmasked.
      const safe = boundText(mask(details), LOG_DETAILS_MAX_BYTES);
      emit(level, event, { details: safe });
      try {
        store?.insert(event, opts.clock.now(), safe, options);
      } catch (err) {
        // A full disk must not take relaying down with it; the line above still went out.
        emit("error", "connection_log_write_failed", { error: (err as Error).message });
      }
    },
  };
}

export const stdoutWriter = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
