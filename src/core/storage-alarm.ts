/**
 * What the operator hears of a storage failure (docs/protocol.md "Storage
 * failures"): one line when commits start failing, naming the error, one a
 * minute while they keep failing, and one when a commit succeeds again. The
 * retries themselves (every few hundred ms) stay quiet.
 */
import type { Clock } from "./clock.ts";
import type { EventLog, StorageStatus } from "./ports.ts";

export const STORAGE_REMINDER_MS = 60_000;

export class StorageAlarm {
  private failingSince: number | null = null;
  private lastLine = 0;

  constructor(
    private readonly clock: Clock,
    private readonly log: EventLog,
  ) {}

  update(status: StorageStatus): void {
    const now = this.clock.now();
    if (status.ok) {
      if (this.failingSince === null) return;
      this.log.log("info", "storage_recovered", {
        detail: "commits succeed again; relaying resumes in order",
        failedForMs: now - this.failingSince,
      });
      this.failingSince = null;
      return;
    }
    const fields = {
      code: status.code,
      error: status.error,
      attempts: status.attempts,
      pendingWrites: status.pendingWrites,
    };
    if (this.failingSince === null) {
      this.failingSince = status.since;
      this.lastLine = now;
      this.log.log("error", "storage_failing", {
        ...fields,
        detail:
          "cannot commit to the database; daemons and the server are not read until a commit succeeds (retrying)",
      });
    } else if (now - this.lastLine >= STORAGE_REMINDER_MS) {
      this.lastLine = now;
      this.log.log("error", "storage_still_failing", {
        ...fields,
        failingForMs: now - this.failingSince,
      });
    }
  }
}
