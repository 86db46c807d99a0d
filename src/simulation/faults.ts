/**
 * Storage faults on purpose (like SQLite's own I/O-error tests): a transaction
 * driver that, while a fault stretch is on, fails BEGIN or COMMIT with the
 * error objects bun:sqlite throws for a full disk, an I/O error, a lock or a
 * read-only file. A COMMIT fault is thrown before the real COMMIT, inside the
 * open transaction, so the batch takes its real rollback path.
 */
import type { TransactionDriver } from "../store/write-batch.ts";
import type { Prng } from "./prng.ts";

const FAULTS: readonly [string, string][] = [
  ["SQLITE_FULL", "database or disk is full"],
  ["SQLITE_IOERR_WRITE", "disk I/O error"],
  ["SQLITE_BUSY", "database is locked"],
  ["SQLITE_READONLY", "attempt to write a readonly database"],
];

export type FaultPoint = "begin" | "commit" | "apply";

export class FaultPlan {
  /** Probability that a transaction fails while a stretch is on (0: healthy). */
  private rate = 0;
  private stepsLeft = 0;
  injected = 0;

  constructor(private readonly prng: Prng) {}

  get active(): boolean {
    return this.rate > 0;
  }

  /** Commits fail with probability `rate` for the next `steps` steps. */
  start(rate: number, steps: number): void {
    this.rate = rate;
    this.stepsLeft = steps;
  }

  /** Called once per step: a stretch ends by itself. */
  tick(): void {
    if (this.stepsLeft > 0 && --this.stepsLeft === 0) this.rate = 0;
  }

  heal(): void {
    this.rate = 0;
    this.stepsLeft = 0;
  }

  shouldFail(_point: FaultPoint): boolean {
    return this.rate > 0 && this.prng.chance(this.rate);
  }

  error(): Error {
    const [code, message] = this.prng.pick(FAULTS) as [string, string];
    this.injected += 1;
    return Object.assign(new Error(message), { code });
  }
}

/** Wraps SQLite's transactions: fails at BEGIN, or just before the real COMMIT. */
export function faultyTransactions(inner: TransactionDriver, plan: FaultPlan): TransactionDriver {
  const reclaim = inner.reclaim?.bind(inner);
  return {
    ...(reclaim ? { reclaim } : {}),
    begin: () => {
      if (plan.shouldFail("begin")) throw plan.error();
      inner.begin();
    },
    commit: () => {
      if (plan.shouldFail("commit")) throw plan.error();
      inner.commit();
    },
    rollback: () => inner.rollback(),
  };
}

/**
 * The memory stores apply each write as it runs and cannot undo it, so their
 * "transaction" may only fail before anything is applied: at BEGIN.
 */
export function memoryTransactions(plan: FaultPlan): TransactionDriver {
  return {
    begin: () => {
      if (plan.shouldFail("begin")) throw plan.error();
    },
    commit: () => {},
    rollback: () => {},
  };
}
