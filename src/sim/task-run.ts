/**
 * One task run by an automatic sim daemon: `lines` output steps spread evenly
 * over the run, then completion. Pausing holds the next step; resuming waits
 * one full step again, which is close enough for a simulation and keeps the
 * state to a step counter and one timer.
 */

export interface TaskRunSink {
  output(line: string): void;
  finish(): void;
}

export class TaskRun {
  #step = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #paused = false;
  #ended = false;
  readonly #stepMs: number;

  constructor(
    readonly taskId: string,
    runMs: number,
    readonly lines: number,
    readonly sink: TaskRunSink,
  ) {
    // lines + 1 intervals: the last one ends with the completion.
    this.#stepMs = Math.max(0, runMs) / (lines + 1);
  }

  get paused(): boolean {
    return this.#paused;
  }

  start(): void {
    this.#schedule();
  }

  pause(): void {
    if (this.#ended) return;
    this.#paused = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  resume(): void {
    if (this.#ended || !this.#paused) return;
    this.#paused = false;
    this.#schedule();
  }

  /** Stops the run without completing it (interrupt, manual completion, close). */
  cancel(): void {
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => this.#advance(), this.#stepMs);
  }

  #advance(): void {
    this.#timer = undefined;
    if (this.#ended || this.#paused) return;
    this.#step++;
    if (this.#step <= this.lines) {
      this.sink.output(`line ${this.#step}/${this.lines} of ${this.taskId}`);
      // The sink may have cancelled us (e.g. the socket closed under it).
      if (!this.#ended && !this.#paused) this.#schedule();
      return;
    }
    this.#ended = true;
    this.sink.finish();
  }
}
