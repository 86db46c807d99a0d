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
import { maskedRelayEnv, relayEnv, type Tuning } from "./relay-env.ts";

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
  /** Settings the scenario needs beyond the defaults, each with its reason. */
  tunings?: readonly Tuning[];
  /** `--relay-env`: a deliberate non-default run, labelled in the report. */
  extra?: Record<string, string>;
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
  /** The MAKIMA_* variables it ran with, secrets masked (see relay-env.ts). */
  readonly env: Record<string, string>;
  /** Why each non-default setting is there. */
  readonly reasons: readonly string[];
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
  // Built from nothing but PATH/HOME/TMPDIR: the caller's MAKIMA_RELAY_* never leak in.
  const env = relayEnv({
    serverUrl: opts.serverUrl,
    apiKey: opts.apiKey,
    port,
    dbPath: join(dir, "relay.db"),
    home: dir,
    tmpDir: tmpdir(),
    tunings: opts.tunings,
    extra: opts.extra,
    cpuProfDir: opts.cpuProfDir ? join(opts.cpuProfDir, opts.label) : undefined,
  });
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
    env: maskedRelayEnv(env),
    reasons: [
      ...(opts.tunings ?? []).map((t) => t.why),
      ...(Object.keys(opts.extra ?? {}).length > 0
        ? ["set with --relay-env: a non-default run"]
        : []),
    ],
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
