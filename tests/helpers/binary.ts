// Helpers for tests that run the compiled relay (`bun run build` -> dist/makima-relay).
//
//   const binary = await ensureBinary();
//   const port = await freePort();
//   await using relay = spawnRelayBinary({ binary, env: { MAKIMA_RELAY_PORT: String(port) } });
//   await relay.waitForHttp("/health", 10_000);
//
// The relay logs one JSON object per line on stdout; `waitForLog` matches on those.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY_PATH } from "../../scripts/build-binary.ts";

export { BINARY_PATH, ensureBinary, REPO_ROOT } from "../../scripts/build-binary.ts";

const KILL_GRACE_MS = 5_000;

export type RelayLog = Record<string, unknown>;

export interface SpawnRelayOptions {
  /** Variables for the relay; only PATH, HOME and TMPDIR are inherited unless `inheritEnv`. */
  env?: Record<string, string | undefined>;
  /** Working directory; defaults to a fresh temp directory removed on dispose. */
  cwd?: string;
  args?: string[];
  inheritEnv?: boolean;
  /** Port for `waitForHttp`; defaults to `env.MAKIMA_RELAY_PORT`. */
  port?: number;
  /** Defaults to `BINARY_PATH`; call `ensureBinary()` first. */
  binary?: string;
}

export interface RelayProcess extends AsyncDisposable {
  readonly pid: number;
  readonly cwd: string;
  /** Parsed JSON log lines from stdout, in order. */
  readonly logs: readonly RelayLog[];
  readonly stdoutLines: readonly string[];
  readonly stderrLines: readonly string[];
  /** Exit code (128 + signal number when killed); resolves once stdout and stderr are drained. */
  readonly exited: Promise<number>;
  /** Resolves with the first log line (already received or future) matching `predicate`. */
  waitForLog(predicate: (log: RelayLog) => boolean, timeoutMs: number): Promise<RelayLog>;
  /** Polls `http://127.0.0.1:<port><path>` until it answers 200, and returns that response. */
  waitForHttp(path: string, timeoutMs: number): Promise<Response>;
  kill(signal?: NodeJS.Signals | number): void;
}

// ---------------------------------------------------------------------------------------
// Running

/** A port that was free a moment ago on 127.0.0.1 (bind port 0, read it, close). */
export async function freePort(): Promise<number> {
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data() {} },
  });
  const { port } = listener;
  listener.stop(true);
  return port;
}

interface LogWaiter {
  predicate: (log: RelayLog) => boolean;
  resolve: (log: RelayLog) => void;
  reject: (error: unknown) => void;
}

export function spawnRelayBinary(options: SpawnRelayOptions = {}): RelayProcess {
  const ownsCwd = options.cwd === undefined;
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), "makima-relay-test-"));
  const env = relayEnv(options);
  const portText = options.port ?? env.MAKIMA_RELAY_PORT;
  const proc = Bun.spawn([options.binary ?? BINARY_PATH, ...(options.args ?? [])], {
    cwd,
    env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });

  const logs: RelayLog[] = [];
  const stdoutLines: string[] = [];
  const stderrLines: string[] = [];
  const waiters = new Set<LogWaiter>();

  const onStdoutLine = (line: string): void => {
    stdoutLines.push(line);
    const log = parseLogLine(line);
    if (!log) return;
    logs.push(log);
    for (const waiter of [...waiters]) {
      // A throwing predicate fails its own wait, not the reading of stdout.
      let matched: boolean;
      try {
        matched = waiter.predicate(log);
      } catch (error) {
        waiters.delete(waiter);
        waiter.reject(error);
        continue;
      }
      if (!matched) continue;
      waiters.delete(waiter);
      waiter.resolve(log);
    }
  };

  const onStderrLine = (line: string): void => {
    stderrLines.push(line);
  };
  const exited = Promise.all([
    proc.exited,
    readLines(proc.stdout, onStdoutLine).catch((error) => onStderrLine(`[stdout: ${error}]`)),
    readLines(proc.stderr, onStderrLine).catch((error) => onStderrLine(`[stderr: ${error}]`)),
  ]).then(([code]) => code);

  const exitError = (what: string): Promise<never> =>
    exited.then((code) => {
      throw new Error(`relay exited with code ${code} ${what}\nstderr:\n${stderrLines.join("\n")}`);
    });

  const waitForLog = (predicate: (log: RelayLog) => boolean, timeoutMs: number) => {
    const seen = logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    const { promise, resolve, reject } = Promise.withResolvers<RelayLog>();
    const waiter: LogWaiter = { predicate, resolve, reject };
    waiters.add(waiter);
    return withTimeout(
      Promise.race([promise, exitError("before the expected log line")]),
      timeoutMs,
      () => `no matching log line within ${timeoutMs} ms\nstdout:\n${stdoutLines.join("\n")}`,
    ).finally(() => waiters.delete(waiter));
  };

  const waitForHttp = async (path: string, timeoutMs: number) => {
    if (portText === undefined) {
      throw new Error("waitForHttp needs `port` or env.MAKIMA_RELAY_PORT");
    }
    const url = `http://127.0.0.1:${portText}${path}`;
    return pollUntilOk(url, timeoutMs, exited, stderrLines);
  };

  const kill = (signal: NodeJS.Signals | number = "SIGTERM") => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
  };

  return {
    pid: proc.pid,
    cwd,
    logs,
    stdoutLines,
    stderrLines,
    exited,
    waitForLog,
    waitForHttp,
    kill,
    async [Symbol.asyncDispose]() {
      kill("SIGTERM");
      const timer = setTimeout(() => kill("SIGKILL"), KILL_GRACE_MS);
      await exited;
      clearTimeout(timer);
      if (ownsCwd) rmSync(cwd, { recursive: true, force: true });
    },
  };
}

function relayEnv(options: SpawnRelayOptions): Record<string, string> {
  const base: Record<string, string | undefined> = options.inheritEnv
    ? { ...process.env }
    : { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR };
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...base, ...options.env })) {
    if (value !== undefined) env[key] = value;
  }
  return env;
}

function parseLogLine(line: string): RelayLog | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as RelayLog)
      : undefined;
  } catch {
    return undefined;
  }
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let newline = buffered.indexOf("\n");
    while (newline !== -1) {
      onLine(buffered.slice(0, newline).replace(/\r$/, ""));
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
    }
  }
  buffered += decoder.decode();
  if (buffered) onLine(buffered);
}

async function pollUntilOk(
  url: string,
  timeoutMs: number,
  exited: Promise<number>,
  stderrLines: readonly string[],
): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | undefined;
  exited.then((code) => {
    exitCode = code;
  });
  let delay = 10;
  let last = "no response yet";
  for (;;) {
    if (exitCode !== undefined) {
      throw new Error(
        `relay exited with code ${exitCode} while polling ${url}\nstderr:\n${stderrLines.join("\n")}`,
      );
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0)
      throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (${last})`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Math.min(remaining, 2_000)) });
      if (res.status === 200) return res;
      last = `last status ${res.status}`;
      await res.body?.cancel();
    } catch (error) {
      last = `last error: ${(error as Error).message}`;
    }
    // Backoff between polls, cut short if the process exits.
    await Promise.race([Bun.sleep(Math.min(delay, Math.max(deadline - Date.now(), 0))), exited]);
    delay = Math.min(delay * 2, 250);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
