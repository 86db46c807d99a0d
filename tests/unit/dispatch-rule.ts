import type { Daemon } from "../../src/core/daemon.ts";

/**
 * The dispatch rule stated as plainly as possible (docs/protocol.md
 * "Dispatch"): the fewest active tasks among daemons with a free slot; ties go
 * to the one that waited longest; daemons under backpressure are skipped. The
 * relay uses an indexed heap (src/core/dispatch-heap.ts); the tests check it
 * against this scan.
 */
export function pickDaemon(daemons: Iterable<Daemon>): Daemon | undefined {
  let best: Daemon | undefined;
  for (const d of daemons) {
    if (d.backpressured || d.retired || d.holds.size >= d.capacity) continue;
    if (
      !best ||
      d.holds.size < best.holds.size ||
      (d.holds.size === best.holds.size && d.turn < best.turn)
    ) {
      best = d;
    }
  }
  return best;
}
