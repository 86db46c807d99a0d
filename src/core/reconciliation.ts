/**
 * Reconciliation (docs/protocol.md "Reconciliation"): what a daemon's
 * heartbeats say of the tasks it holds. The first heartbeat after
 * (re)authentication settles the tasks it held before: any it does not list
 * is lost. After that, a task whose spawnTask was sent and that is missing
 * from two consecutive heartbeats was forgotten by the daemon: lost too. One
 * omission alone can be a heartbeat crossing the spawnTask.
 *
 * This module owns the counting (per task: sent, countable, misses; per
 * daemon: what its first heartbeat settles, and the parts heard so far); who
 * holds what is the registry's (daemon-registry.ts), and losing a task is the
 * task book's.
 */
import type { Daemon } from "./daemon.ts";

/**
 * How long a daemon's socket must have been read without a pause before a
 * spawnTask sent to it starts the two-heartbeat count at once. Heartbeats
 * that waited in a paused socket were written before the daemon got the
 * task: read after it, they would look like omissions. A task sent sooner
 * counts once the daemon lists it, or once reading has gone on this long.
 */
export const RECONCILE_SETTLE_MS = 5000;

/** One dispatch of a task, as its daemon's heartbeats count it. */
export interface TaskCount {
  /** Its spawnTask has been written to a daemon socket (omissions count from then). */
  spawnSent: boolean;
  /** Omissions from heartbeats count (see RECONCILE_SETTLE_MS). */
  countable: boolean;
  /** Consecutive accepted heartbeats of its daemon that did not list it. */
  misses: number;
}

export type Lost = readonly [taskId: string, why: string];

export class Reconciliation {
  private readonly counts = new Map<string, TaskCount>();
  /** Tasks a daemon held when it authenticated, settled by its first heartbeat. */
  private readonly settling = new WeakMap<Daemon, Set<string>>();
  /** Of a heartbeat in parts (relay-to-relay), the ids heard so far that the daemon holds. */
  private readonly heard = new WeakMap<Daemon, Set<string>>();

  /** Has `daemon` been read without a pause for RECONCILE_SETTLE_MS? (DaemonLiveness decides.) */
  constructor(private readonly readSteadily: (daemon: Daemon) => boolean) {}

  /** A task is dispatched (`sent`: its spawnTask went out before a restart). */
  track(taskId: string, sent: boolean): TaskCount {
    const count = { spawnSent: sent, countable: false, misses: 0 };
    this.counts.set(taskId, count);
    return count;
  }

  /** Its spawnTask was written to `daemon`'s socket. */
  sent(count: TaskCount, daemon: Daemon): void {
    count.spawnSent = true;
    count.countable = this.readSteadily(daemon);
  }

  /** The task ended. */
  forget(taskId: string): void {
    this.counts.delete(taskId);
  }

  /** A daemon authenticated holding tasks (its machine's): its first heartbeat settles them. */
  attached(daemon: Daemon): void {
    for (const id of daemon.holds) {
      const count = this.counts.get(id);
      if (count) count.misses = 0;
    }
    if (daemon.holds.size > 0) this.settling.set(daemon, new Set(daemon.holds));
  }

  /**
   * An accepted heartbeat, or a part of one (`more`: the rest follows). A
   * heartbeat in parts counts once, when its last part arrives, as the union
   * of its parts. Only the ids the daemon holds are kept meanwhile, so memory
   * stays bounded by the tasks it holds. Returns the tasks it shows lost.
   */
  heartbeat(daemon: Daemon, listed: readonly string[], more: boolean): Lost[] {
    const present = this.heard.get(daemon) ?? new Set<string>();
    for (const id of listed) if (daemon.holds.has(id)) present.add(id);
    if (more) {
      this.heard.set(daemon, present);
      return [];
    }
    this.heard.delete(daemon);
    const before = this.settling.get(daemon);
    this.settling.delete(daemon);
    const lost: Lost[] = [];
    for (const id of daemon.holds) {
      const count = this.counts.get(id);
      if (!count) continue;
      if (present.has(id)) {
        count.misses = 0;
        count.countable = true;
      } else if (before?.has(id))
        lost.push([id, "not listed in the daemon's first heartbeat after reconnecting"]);
      else if (count.spawnSent && this.omissionCounts(daemon, count) && ++count.misses >= 2)
        lost.push([id, "missing from two consecutive heartbeats of its daemon"]);
    }
    return lost;
  }

  /** See RECONCILE_SETTLE_MS: a heartbeat could have waited in a paused socket. */
  private omissionCounts(daemon: Daemon, count: TaskCount): boolean {
    if (!count.countable) count.countable = this.readSteadily(daemon);
    return count.countable;
  }
}
