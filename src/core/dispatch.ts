import type { Daemon } from "./daemon-registry.ts";

/**
 * Least-loaded choice (docs/protocol.md "Dispatch"): the fewest active tasks
 * among daemons with a free slot; ties go to the one that waited longest.
 * Daemons under backpressure are skipped until they drain.
 */
export function pickDaemon(daemons: Iterable<Daemon>): Daemon | undefined {
  let best: Daemon | undefined;
  for (const d of daemons) {
    if (d.backpressured || d.retired || d.tasks.size >= d.capacity) continue;
    if (
      !best ||
      d.tasks.size < best.tasks.size ||
      (d.tasks.size === best.tasks.size && d.turn < best.turn)
    ) {
      best = d;
    }
  }
  return best;
}
