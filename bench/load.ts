#!/usr/bin/env bun
/**
 * A load-generator process (spawned by bench/main.ts): it holds daemon
 * connections to the relay or straight to the sim server, and does what the
 * bench tells it on stdin (see load-protocol.ts). Running the load in its
 * own process keeps its CPU apart from the server's and the relay's, so each
 * is measured on its own; the fan-in scenario starts several.
 */
import { LoadDaemon } from "./load-daemon.ts";
import type {
  AwaitTasksCommand,
  ConnectCommand,
  ConnectResult,
  LoadCommand,
  LoadReply,
  LoadStats,
} from "./load-protocol.ts";
import { stream } from "./load-stream.ts";

const HEARTBEAT_TICK_MS = 100;
const CLOSE_WAIT_MS = 3000;

const daemons: LoadDaemon[] = [];
let heartbeatTimer: ReturnType<typeof setInterval> | undefined;
let heartbeatsSent = 0;

function reply(r: LoadReply): void {
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

function handle(cmd: LoadCommand): Promise<unknown> | unknown {
  switch (cmd.cmd) {
    case "connect":
      return connect(cmd);
    case "awaitTasks":
      return awaitTasks(cmd);
    case "stream":
      return stream(daemons, cmd);
    case "heartbeats":
      return startHeartbeats(cmd.everyMs);
    case "stats":
      return stats();
    case "close":
      return closeAll();
  }
}

async function connect(cmd: ConnectCommand): Promise<ConnectResult> {
  const started = performance.now();
  const deadline = started + cmd.timeoutMs;
  const result: ConnectResult = { connected: 0, failed: 0, ms: 0, firstError: null };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cmd.count && performance.now() < deadline) {
      const daemon = new LoadDaemon({
        url: cmd.url,
        apiKey: cmd.apiKey,
        machineId: `${cmd.prefix}-${next++}`,
        capacity: cmd.capacity,
        autoComplete: cmd.autoComplete,
      });
      daemons.push(daemon);
      try {
        await withTimeout(daemon.authenticated, deadline - performance.now());
        result.connected++;
      } catch (error) {
        result.failed++;
        result.firstError ??= (error as Error).message;
        daemon.ws.close();
      }
    }
  };
  const workers = Math.max(1, Math.min(cmd.concurrency, cmd.count));
  await Promise.all(Array.from({ length: workers }, worker));
  result.failed += cmd.count - next;
  result.ms = performance.now() - started;
  return result;
}

/** Resolves once every open daemon holds a task (stream scenarios), or at the timeout. */
async function awaitTasks(cmd: AwaitTasksCommand): Promise<{ ready: number; missing: number }> {
  const deadline = performance.now() + cmd.timeoutMs;
  const count = () => {
    const open = daemons.filter((d) => d.open);
    const ready = open.filter((d) => d.tasks.length > 0).length;
    return { ready, missing: open.length - ready };
  };
  while (count().missing > 0 && performance.now() < deadline) await Bun.sleep(5);
  return count();
}

/** One timer for all daemons: each tick sends the slice whose turn it is. */
function startHeartbeats(everyMs: number): { everyMs: number } {
  clearInterval(heartbeatTimer);
  heartbeatTimer = undefined;
  if (everyMs <= 0) return { everyMs: 0 };
  const slices = Math.max(1, Math.round(everyMs / HEARTBEAT_TICK_MS));
  let tick = 0;
  heartbeatTimer = setInterval(() => {
    const slice = tick++ % slices;
    for (let i = slice; i < daemons.length; i += slices) {
      const d = daemons[i] as LoadDaemon;
      if (!d.open) continue;
      d.send(`{"type":"heartbeat","activeTasks":${JSON.stringify(d.tasks)}}`);
      heartbeatsSent++;
    }
  }, HEARTBEAT_TICK_MS);
  return { everyMs };
}

function stats(): LoadStats {
  const s: LoadStats = {
    daemons: daemons.length,
    open: 0,
    spawns: 0,
    completes: 0,
    heartbeats: heartbeatsSent,
    errors: {},
    closes: {},
  };
  for (const d of daemons) {
    if (d.open) s.open++;
    s.spawns += d.spawns;
    s.completes += d.completes;
    for (const [code, n] of d.errors) s.errors[code] = (s.errors[code] ?? 0) + n;
    if (d.closeCode !== null) s.closes[d.closeCode] = (s.closes[d.closeCode] ?? 0) + 1;
  }
  return s;
}

async function closeAll(): Promise<LoadStats> {
  startHeartbeats(0);
  const final = stats();
  for (const d of daemons) if (d.open) d.ws.close(1000, "bench done");
  const deadline = performance.now() + CLOSE_WAIT_MS;
  while (daemons.some((d) => d.closeCode === null) && performance.now() < deadline) {
    await Bun.sleep(10);
  }
  return final;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no authenticated within the timeout`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

for await (const line of console) {
  if (line.trim() === "") continue;
  const { id, ...cmd } = JSON.parse(line) as LoadCommand & { id: number };
  const command = cmd as LoadCommand;
  Promise.resolve()
    .then(() => handle(command))
    .then(
      (result) => reply({ id, ok: true, result }),
      (error: unknown) => reply({ id, ok: false, error: String((error as Error)?.stack ?? error) }),
    )
    .then(() => {
      if (command.cmd === "close") process.exit(0);
    });
}
// stdin closed: the bench went away.
process.exit(0);
