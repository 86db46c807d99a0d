/**
 * `makima-relay drain [--url URL] [--token T] [--timeout-ms N]`: drains a
 * running relay before maintenance. It sends POST /drain (the relay stops
 * saying it is ready and, in `auto` capacity mode, tells its server it has no
 * room), then polls /status until the relay holds nothing: no task dispatched
 * or queued, no frame waiting for the server. Exit code 0 once it is empty, 1
 * when the timeout passes first, 2 when the relay cannot be reached or
 * refuses (or the arguments are wrong). The relay stays draining either way
 * (DELETE /drain ends it).
 */
import { err, ok, type Result } from "../protocol/result.ts";

export const DRAIN_EXIT = { drained: 0, timeout: 1, unreachable: 2 } as const;

export const DEFAULT_DRAIN_TIMEOUT_MS = 300_000;
const POLL_MS = 250;
const FETCH_TIMEOUT_MS = 3000;

export interface DrainArgs {
  /** The relay's base URL, without a trailing slash. */
  url: string;
  /** Sent as the bearer token: `--token`, else the configured admin token. */
  token: string | null;
  timeoutMs: number;
}

/** What is left in the relay, from /status. */
interface Holding {
  activeTasks: number;
  pendingTasks: number;
  waiting: number;
}

/**
 * `--url URL`, `--token T`, `--timeout-ms N` (or `--flag=value`). The default
 * URL is the configured port on loopback, the default token the configured
 * admin token (MAKIMA_RELAY_ADMIN_TOKEN), as for `status`.
 */
export function parseDrainArgs(
  args: readonly string[],
  defaults: { url: string; token: string | null },
): Result<DrainArgs, string> {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (!["--url", "--token", "--timeout-ms"].includes(flag))
      return err(`drain: unknown argument "${arg}" (see --help)`);
    const value = inline ?? args[++i];
    if (!value) return err(`${flag}: missing value`);
    values.set(flag, value);
  }
  const url = values.get("--url") ?? defaults.url;
  if (!/^https?:\/\//.test(url)) {
    return err(`--url: expected an http:// or https:// URL, got "${url}"`);
  }
  const timeout = values.get("--timeout-ms") ?? String(DEFAULT_DRAIN_TIMEOUT_MS);
  if (!/^\d+$/.test(timeout)) {
    return err(`--timeout-ms: expected a whole number of milliseconds, got "${timeout}"`);
  }
  return ok({
    url: url.replace(/\/+$/, ""),
    token: values.get("--token") ?? defaults.token,
    timeoutMs: Number(timeout),
  });
}

export interface DrainIo {
  fetch?: typeof fetch;
  out(line: string): void;
  err(line: string): void;
  now?(): number;
  sleep?(ms: number): Promise<void>;
  pollMs?: number;
}

const describe = (h: Holding): string =>
  `${h.activeTasks} active, ${h.pendingTasks} pending, ${h.waiting} frames waiting for the server`;

const isEmpty = (h: Holding): boolean =>
  h.activeTasks === 0 && h.pendingTasks === 0 && h.waiting === 0;

function holdingOf(doc: unknown): Holding | null {
  const v = doc as {
    activeTasks?: unknown;
    pendingTasks?: unknown;
    outbox?: { waiting?: unknown } | null;
  } | null;
  if (typeof v !== "object" || v === null) return null;
  const { activeTasks, pendingTasks } = v;
  const waiting = v.outbox?.waiting;
  if (typeof activeTasks !== "number" || typeof pendingTasks !== "number") return null;
  if (typeof waiting !== "number") return null;
  return { activeTasks, pendingTasks, waiting };
}

/** One request; the reason as text when it fails, so that the caller can print why. */
async function call(
  io: DrainIo,
  args: DrainArgs,
  method: "GET" | "POST",
  path: string,
): Promise<Result<unknown, string>> {
  const target = `${args.url}${path}`;
  try {
    const res = await (io.fetch ?? fetch)(target, {
      method,
      headers: args.token ? { authorization: `Bearer ${args.token}` } : {},
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    const body: unknown = await res.json().catch(() => null);
    if (!res.ok) {
      const why = (body as { error?: unknown } | null)?.error;
      return err(
        `${method} ${target}: HTTP ${res.status}${typeof why === "string" ? `: ${why}` : ""}`,
      );
    }
    return ok(body);
  } catch (error) {
    return err(`${method} ${target}: ${(error as Error).message}`);
  }
}

export async function runDrain(args: DrainArgs, io: DrainIo): Promise<number> {
  const now = io.now ?? Date.now;
  const sleep = io.sleep ?? ((ms: number) => Bun.sleep(ms));
  const fail = (why: string): number => {
    io.err(`makima-relay drain: ${why}`);
    return DRAIN_EXIT.unreachable;
  };
  const started = await call(io, args, "POST", "/drain");
  if (!started.ok) return fail(started.error);
  const deadline = now() + args.timeoutMs;
  let last = "";
  for (;;) {
    const status = await call(io, args, "GET", "/status");
    if (!status.ok) return fail(status.error);
    const holding = holdingOf(status.value);
    if (!holding) return fail(`${args.url}/status did not answer with a relay status document`);
    if (isEmpty(holding)) {
      io.out(`drained: ${args.url} holds no task and nothing for its server`);
      return DRAIN_EXIT.drained;
    }
    const line = describe(holding);
    if (line !== last) io.out(`draining: ${line}`);
    last = line;
    if (now() >= deadline) {
      io.err(
        `makima-relay drain: not empty after ${args.timeoutMs} ms (${line}); the relay stays draining (DELETE /drain ends it)`,
      );
      return DRAIN_EXIT.timeout;
    }
    await sleep(io.pollMs ?? POLL_MS);
  }
}
