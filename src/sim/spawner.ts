/**
 * The sim server's automatic mode for the demo and the benchmark: spawns
 * tasks at a steady rate. Each tick spawns what the elapsed time owes, so
 * rates above the timer resolution still hold.
 */
import { nowMs } from "./wait.ts";

export interface SpawningOptions {
  ratePerSec: number;
  taskName?: string;
  /** Size of an extra `payload` string field, to load the links. */
  payloadBytes?: number;
  onSpawn?: (taskId: string, at: number) => void;
}

export interface SpawnTarget {
  readonly connections: readonly unknown[];
  spawnTask(taskId: string, taskName: string, extra: object): string;
}

/** Bounds one tick's catch-up burst after the event loop stalled. */
const MAX_SPAWNS_PER_TICK = 10_000;
const MIN_TICK_MS = 5;

/** Starts spawning; returns the function that stops it. */
export function startSpawner(
  target: SpawnTarget,
  opts: SpawningOptions,
  nextTaskId: () => string,
): () => void {
  if (!(opts.ratePerSec > 0)) throw new Error(`ratePerSec must be > 0, got ${opts.ratePerSec}`);
  const extra = opts.payloadBytes ? { payload: "x".repeat(opts.payloadBytes) } : {};
  let start = nowMs();
  let spawned = 0;
  // While nobody is connected the debt is forgiven: a real server does not
  // save up spawns for an absent daemon and fire them all on reconnect.
  const forgive = () => {
    start = nowMs();
    spawned = 0;
  };
  const tick = () => {
    const owed = Math.floor(((nowMs() - start) * opts.ratePerSec) / 1000) - spawned;
    for (let i = 0; i < Math.min(owed, MAX_SPAWNS_PER_TICK); i++) {
      if (target.connections.length === 0) return forgive();
      const taskId = nextTaskId();
      try {
        target.spawnTask(taskId, opts.taskName ?? `sim ${taskId}`, extra);
      } catch {
        // Dropped by a closing socket: the close handler is about to run.
        return forgive();
      }
      spawned++;
      opts.onSpawn?.(taskId, nowMs());
    }
  };
  const timer = setInterval(tick, Math.max(MIN_TICK_MS, Math.floor(1000 / opts.ratePerSec)));
  return () => clearInterval(timer);
}
