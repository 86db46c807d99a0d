/**
 * History retention a step at a time: every PRUNE_STEP ended tasks, and at
 * each sweep when tasks ended since the last step (or a backlog remains,
 * e.g. after lowering the limit), at most twice that many of the oldest go,
 * so pruning keeps pace without ever stalling relaying on one large delete.
 */
import type { EventLog, TaskStore } from "./ports.ts";

/** Ended tasks between two pruning steps (a step deletes at most twice this). */
export const PRUNE_STEP = 500;

export class HistoryPruner {
  private endedSincePrune = 0;
  /** The last step deleted all it could: more may be left (true at start, to catch up). */
  private backlog = true;

  constructor(
    private readonly tasks: Pick<TaskStore, "prune">,
    private readonly log: EventLog,
    private readonly keep: number,
  ) {}

  /** A task ended. */
  ended(): void {
    this.endedSincePrune += 1;
    if (this.endedSincePrune >= PRUNE_STEP) this.step();
  }

  /** The relay's periodic sweep. */
  sweep(): void {
    if (this.backlog || this.endedSincePrune > 0) this.step();
  }

  private step(): void {
    this.endedSincePrune = 0;
    const limit = PRUNE_STEP * 2;
    this.tasks.prune(this.keep, limit, (deleted) => {
      this.backlog = deleted === limit;
      if (deleted > 0) this.log.log("debug", "history_pruned", { deleted, keep: this.keep });
    });
  }
}
