/**
 * The dispatch scenarios' server side: keep `inFlight` tasks spawned and not
 * yet completed for `durationMs`. Direct mode hands each spawn to the daemon
 * that has waited longest for one (a FIFO of free slots), which is what the
 * relay's least-loaded rule does with equal daemons; relay mode sends every
 * spawn on the relay's link. Latency is spawn written → taskComplete
 * received, both read on the server's clock.
 */
import { nowMs } from "../src/sim/wait.ts";
import type { BenchServer } from "./bench-server.ts";
import { type LatencySummary, Samples } from "./stats.ts";

export interface DispatchOptions {
  inFlight: number;
  durationMs: number;
  /** How long in-flight tasks may take to finish after the window. */
  drainTimeoutMs: number;
  /** Connection ids to spawn on: the relay's, or every daemon's. */
  targets: readonly string[];
  label: string;
}

export interface DispatchResult {
  spawned: number;
  completed: number;
  /** Completions inside the measurement window, per second of it. */
  tasksPerSec: number;
  latencyMs: LatencySummary;
  /** Spawned but never completed by the end of the drain wait. */
  unfinished: number;
  spawnFailures: number;
}

export async function runDispatch(
  server: BenchServer,
  opts: DispatchOptions,
): Promise<DispatchResult> {
  const { sim } = server;
  const spawnedAt = new Map<string, number>();
  const latency = new Samples();
  let next = 0;
  let spawning = true;
  let completed = 0;
  let inWindow = 0;
  let spawnFailures = 0;
  // Free slots, oldest first: each target once, repeated round-robin up to `inFlight`.
  const free = new SlotQueue(
    Array.from({ length: Math.max(opts.inFlight, opts.targets.length) }, (_, i) => {
      return opts.targets[i % opts.targets.length] as string;
    }),
  );
  const spawn = (): void => {
    const connId = free.take();
    if (connId === undefined) return;
    const taskId = `${opts.label}-${next++}`;
    spawnedAt.set(taskId, nowMs());
    try {
      sim.spawnTask(taskId, "bench task", {}, connId);
    } catch {
      spawnedAt.delete(taskId);
      spawnFailures++;
    }
  };
  const started = nowMs();
  const windowEnd = started + opts.durationMs;
  const unsubscribe = sim.onFrame((f) => {
    if (f.msg?.type !== "taskComplete") return;
    const at = spawnedAt.get(f.msg.taskId);
    if (at === undefined) return;
    spawnedAt.delete(f.msg.taskId);
    latency.add(f.at - at);
    completed++;
    if (f.at <= windowEnd) inWindow++;
    free.give(f.connId);
    if (spawning) spawn();
  });
  try {
    for (let i = 0; i < opts.inFlight; i++) spawn();
    await Bun.sleep(Math.max(0, windowEnd - nowMs()));
    spawning = false;
    const deadline = performance.now() + opts.drainTimeoutMs;
    while (spawnedAt.size > 0 && performance.now() < deadline) await Bun.sleep(10);
  } finally {
    unsubscribe();
  }
  return {
    spawned: next,
    completed,
    tasksPerSec: (inWindow * 1000) / opts.durationMs,
    latencyMs: latency.summary(),
    unfinished: spawnedAt.size,
    spawnFailures,
  };
}

/** A FIFO of connection ids without Array.shift's O(n) copy. */
class SlotQueue {
  #items: string[];
  #head = 0;

  constructor(initial: string[]) {
    this.#items = initial;
  }

  take(): string | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const id = this.#items[this.#head++];
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return id;
  }

  give(id: string): void {
    this.#items.push(id);
  }
}
