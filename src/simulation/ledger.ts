/**
 * Every tagged frame a simulated daemon wrote, and what became of it. A frame
 * the relay read for a task that daemon holds must reach the server once, in
 * order per attempt; across a crash at least once (the outbox resends what it
 * had not deleted yet), and a frame read after the last commit before a crash
 * may be gone (the protocol has no acknowledgement to the daemon). A frame
 * still in the socket when its connection ends is lost with it (TCP reset).
 */

export interface FrameMeta {
  readonly sim: string;
  readonly type: string;
  readonly taskId: string | null;
  /** The daemon's sequence number: increases with every frame it writes. */
  readonly n: number;
  readonly critical: boolean;
}

/** One frame a simulated daemon wrote, and what the ledger knows became of it. */
export interface TrackedFrame extends FrameMeta {
  state: "queued" | "read" | "unread";
  /** Read while the relay held the task for this daemon: it must be forwarded. */
  held: boolean;
  /** The relay's attempt of the task when it read the frame (what the frame counts for). */
  attempt: number | null;
  step: number;
  /** Read after the last full commit before a crash: it may be lost. */
  exempt: boolean;
  copies: number;
  /** Crash count at the latest arrival. */
  epoch: number;
}

type Fail = (invariant: string, message: string) => void;

export class FrameLedger {
  readonly frames = new Map<string, TrackedFrame>();
  /** Read since everything was last committed. */
  private window: TrackedFrame[] = [];
  /** Highest `n` that reached the server, per attempt (a lower new one is a reordering). */
  private readonly lastN = new Map<number, number>();
  /** Frames the outbox dropped at its size limit, summed over relay processes. */
  dropped = 0;

  constructor(private readonly fail: Fail) {}

  written(meta: FrameMeta): void {
    this.frames.set(meta.sim, {
      ...meta,
      state: "queued",
      held: false,
      attempt: null,
      step: -1,
      exempt: false,
      copies: 0,
      epoch: -1,
    });
  }

  read(sim: string, held: boolean, attempt: number | null, step: number): void {
    const f = this.frames.get(sim);
    if (!f) return;
    f.state = "read";
    f.held = held;
    f.attempt = attempt;
    f.step = step;
    this.window.push(f);
  }

  unread(sim: string): void {
    const f = this.frames.get(sim);
    if (f?.state === "queued") f.state = "unread";
  }

  /** The batch is empty and healthy: everything read so far is committed or sent. */
  committed(): void {
    if (this.window.length > 0) this.window = [];
  }

  crashed(): void {
    for (const f of this.window) f.exempt = true;
    this.window = [];
  }

  /** framesArriveOnceInOrder, on arrival: held, new (or resent after a crash), in order. */
  arrived(sim: string, epoch: number): TrackedFrame | undefined {
    const f = this.frames.get(sim);
    if (f?.state !== "read") {
      this.fail("framesArriveOnceInOrder", `the server got frame ${sim} that the relay never read`);
      return undefined;
    }
    if (!f.held) {
      this.fail(
        "framesArriveOnceInOrder",
        `${f.type} ${sim} for ${f.taskId} was forwarded although its daemon did not hold the task`,
      );
      return undefined;
    }
    f.copies += 1;
    if (f.copies > 1) {
      if (f.epoch >= epoch)
        this.fail(
          "framesArriveOnceInOrder",
          `${f.type} ${sim} for ${f.taskId} reached the server ${f.copies} times without a crash in between`,
        );
      f.epoch = epoch;
      return f;
    }
    f.epoch = epoch;
    if (f.attempt === null) return f;
    const last = this.lastN.get(f.attempt) ?? 0;
    if (f.n <= last)
      this.fail(
        "framesArriveOnceInOrder",
        `${f.type} ${sim} (n=${f.n}) of attempt ${f.attempt} of ${f.taskId} arrived after n=${last}`,
      );
    else this.lastN.set(f.attempt, f.n);
    return f;
  }

  /** framesArriveOnceInOrder, end of run: every held frame arrived, but for counted outbox drops. */
  checkAllArrived(): void {
    let missingOutput = 0;
    let example: TrackedFrame | null = null;
    for (const f of this.frames.values()) {
      if (f.state === "queued") {
        this.fail(
          "framesArriveOnceInOrder",
          `${f.type} ${f.sim} for ${f.taskId} was written but never read, and its connection did not end`,
        );
        return;
      }
      if (f.state !== "read" || !f.held || f.exempt || f.copies > 0) continue;
      if (f.critical) {
        this.fail(
          "framesArriveOnceInOrder",
          `${f.type} ${f.sim} for ${f.taskId} (read at step ${f.step}) never reached the server`,
        );
        return;
      }
      missingOutput += 1;
      example ??= f;
    }
    if (missingOutput > this.dropped && example)
      this.fail(
        "framesArriveOnceInOrder",
        `${missingOutput} output frames never reached the server but the outbox counted ${this.dropped} drops (e.g. ${example.sim} ${example.type} ${example.taskId}, read at step ${example.step})`,
      );
  }
}
