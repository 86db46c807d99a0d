/**
 * The relay under test, as its own process: the compiled binary (or, for
 * profiling, `bun --cpu-prof src/main.ts`), a fresh temp directory and
 * database per run, stdout drained so its log lines can never block it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary } from "../scripts/build-binary.ts";
import { cpuTimeMs, type Memory, memoryOf, trackChild } from "./proc.ts";

const HEALTH_POLL_MS = 2;
const STOP_GRACE_MS = 10_000;
const TAIL_LINES = 40;

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

export interface RelayStatus {
  upstreamConnected: boolean;
  connectedDaemons: number;
  activeTasks: number;
  pendingTasks: number;
  outbox: { frames: number; bytes: number; droppedFrames: number };
}

export interface RelaySpawnOptions {
  serverUrl: string;
  apiKey: string;
  /** Scenario-specific variables on top of the bench defaults. */
  env?: Record<string, string>;
  /** Profile the relay (BUN_OPTIONS=--cpu-prof, honoured by compiled binaries) into DIR/<label>. */
  cpuProfDir?: string | undefined;
  /** A prebuilt binary; default: dist/makima-relay, rebuilt when stale. */
  binary?: string | undefined;
  /** Names the profile after the scenario. */
  label: string;
}

export interface RelayProcess extends AsyncDisposable {
  readonly pid: number;
  readonly port: number;
  readonly httpUrl: string;
  readonly daemonUrl: string;
  /** Spawn → first 200 from /health, ms. */
  readonly startMs: number;
  cpuMs(): number;
  memory(): Memory;
  status(): Promise<RelayStatus>;
  /** SIGTERM, then SIGKILL after a grace period; resolves with the exit code. */
  stop(): Promise<number>;
  /** The last lines of stdout and stderr, for failure reports. */
  tail(): string;
}

export async function spawnRelay(opts: RelaySpawnOptions): Promise<RelayProcess> {
  const dir = mkdtempSync(join(tmpdir(), "makima-relay-bench-"));
  const port = freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? dir,
    TMPDIR: tmpdir(),
    MAKIMA_SERVER_URL: opts.serverUrl,
    MAKIMA_API_KEY: opts.apiKey,
    MAKIMA_RELAY_HOST: "127.0.0.1",
    MAKIMA_RELAY_PORT: String(port),
    MAKIMA_RELAY_DB: join(dir, "relay.db"),
    MAKIMA_RELAY_LOG_LEVEL: "warn",
    // The default 1000 frames/s per daemon would throttle every throughput scenario.
    MAKIMA_RELAY_DAEMON_RATE: "100000000",
    MAKIMA_RELAY_DAEMON_BURST: "100000000",
    // And its 2 MiB/s of bytes per daemon (1 GiB/s here).
    MAKIMA_RELAY_DAEMON_BYTE_RATE: "1073741824",
    // Every load daemon connects from 127.0.0.1: one address, thousands of sockets at once.
    MAKIMA_RELAY_MAX_UNAUTHENTICATED_PER_ADDRESS: "1000000",
    // Relay settings in the bench's own environment reach the relay under test, e.g.
    // MAKIMA_RELAY_OUTBOX_MAX_BYTES=… bun run bench
    ...Object.fromEntries(
      Object.entries(process.env).filter(
        (e): e is [string, string] => e[0].startsWith("MAKIMA_RELAY_") && e[1] !== undefined,
      ),
    ),
    ...opts.env,
    ...(opts.cpuProfDir
      ? {
          BUN_OPTIONS: `--cpu-prof --cpu-prof-md --cpu-prof-dir=${join(opts.cpuProfDir, opts.label)}`,
        }
      : {}),
  };
  const cmd = [opts.binary ?? (await ensureBinary())];
  const started = performance.now();
  const proc = Bun.spawn(cmd, { cwd: dir, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  trackChild(proc);
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > TAIL_LINES) lines.shift();
  };
  const drained = Promise.all([readLines(proc.stdout, keep), readLines(proc.stderr, keep)]);
  const httpUrl = `http://127.0.0.1:${port}`;
  const tail = () => lines.join("\n");
  let startMs: number;
  try {
    startMs = (await waitForHealth(httpUrl, proc, 15_000)) - started;
  } catch (error) {
    proc.kill("SIGKILL");
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\n${tail()}`);
  }
  let stopping: Promise<number> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
      const code = await proc.exited;
      clearTimeout(timer);
      await drained.catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      return code;
    })();
    return stopping;
  };
  return {
    pid: proc.pid,
    port,
    httpUrl,
    daemonUrl: `ws://127.0.0.1:${port}/ws/daemon`,
    startMs,
    cpuMs: () => cpuTimeMs(proc.pid),
    memory: () => memoryOf(proc.pid),
    status: async () => (await (await fetch(`${httpUrl}/status`)).json()) as RelayStatus,
    stop,
    tail,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** Polls /health every few ms; resolves with the performance.now() of the first 200. */
async function waitForHealth(
  httpUrl: string,
  proc: Bun.Subprocess,
  timeoutMs: number,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`relay exited with code ${proc.exitCode}`);
    try {
      const res = await fetch(`${httpUrl}/health`);
      const at = performance.now();
      await res.body?.cancel();
      if (res.status === 200) return at;
    } catch {
      // Not listening yet.
    }
    await Bun.sleep(HEALTH_POLL_MS);
  }
  throw new Error(`relay /health did not answer 200 within ${timeoutMs} ms`);
}

export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl = buffered.indexOf("\n");
    while (nl !== -1) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf("\n");
    }
  }
  buffered += decoder.decode();
  if (buffered) onLine(buffered);
}
