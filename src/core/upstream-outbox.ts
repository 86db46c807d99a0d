/**
 * Everything for the server goes through here. While the link is
 * authenticated, has no backlog and is not backpressured, a frame is written
 * straight to the socket; otherwise it is appended to the durable outbox,
 * which drains in order, before any newer frame, once the link is back.
 */
import type { Clock } from "./clock.ts";
import type { EventLog, OutboxStore, SendResult } from "./ports.ts";

export interface UpstreamSink {
  send(text: string): SendResult;
}

export interface OutboxCounters {
  droppedFrames: number;
  droppedBytes: number;
}

const DRAIN_BATCH = 512;
/** Backlog (frames) above which daemons are paused while the link catches up. */
const CONGESTION_BACKLOG = 256;

export class UpstreamOutbox {
  private ready = false;
  private blocked = false;
  private congested = false;
  /**
   * Flow control: told `true` while the link is up but cannot take frames as
   * fast as they come (backpressure, or a backlog still draining), so that the
   * daemons' sockets stop being read and the backlog stays in TCP buffers
   * instead of piling up here; `false` once it has caught up. During an
   * outage (link down) it stays `false`: frames then go to the durable outbox.
   */
  onFlowChange: ((congested: boolean) => void) | null = null;
  private draining = false;
  private backlog: number;
  readonly counters: OutboxCounters = { droppedFrames: 0, droppedBytes: 0 };

  constructor(
    private readonly sink: UpstreamSink,
    private readonly store: OutboxStore,
    private readonly maxBytes: number,
    private readonly clock: Clock,
    private readonly log: EventLog,
    /** See Stores.afterCommit: critical frames leave only once their state is committed. */
    private readonly afterCommit: (fn: () => void) => void = (fn) => fn(),
  ) {
    this.backlog = store.stats().frames;
  }

  /**
   * `critical` frames (taskComplete, taskStatusChange, the relay's own lost and
   * cancelled notices) are never dropped, and are written to the outbox in the
   * same transaction as the task state they report: sent after that commits,
   * they survive a crash in between (at worst arriving twice, never not at all).
   */
  forward(text: string, critical: boolean): void {
    if (critical) {
      this.append(text, true);
      this.afterCommit(this.drainSoon);
      this.updateFlow();
      return;
    }
    if (this.ready && !this.blocked && this.backlog === 0) {
      const result = this.sink.send(text);
      if (result === "sent") return;
      if (result === "backpressure") {
        this.blocked = true;
        this.updateFlow();
        return;
      }
    }
    this.append(text, critical);
    this.updateFlow();
  }

  private readonly drainSoon = (): void => this.drain();

  private updateFlow(): void {
    // A few critical frames waiting for their commit are not congestion; a backlog is.
    const congested = this.ready && (this.blocked || this.backlog > CONGESTION_BACKLOG);
    if (congested === this.congested) return;
    this.congested = congested;
    this.onFlowChange?.(congested);
  }

  stats(): { frames: number; bytes: number } {
    return this.store.stats();
  }

  onAuthenticated(): void {
    this.ready = true;
    this.blocked = false;
    if (this.backlog > 0) {
      this.log.connection(
        "outbox_draining",
        `Sending ${this.backlog} frames held during the outage`,
      );
    }
    this.drain();
  }

  onDown(): void {
    this.ready = false;
    this.updateFlow();
  }

  onDrain(): void {
    this.blocked = false;
    this.drain();
  }

  private append(text: string, critical: boolean): void {
    const bytes = Buffer.byteLength(text);
    const over = this.store.stats().bytes + bytes - this.maxBytes;
    if (over > 0) {
      const dropped = this.store.dropOldestNonCritical(over);
      this.backlog -= dropped.frames;
      this.noteDrop(dropped.frames, dropped.bytes, "outbox full: dropped oldest output frames");
      if (!critical && this.store.stats().bytes + bytes > this.maxBytes) {
        this.noteDrop(1, bytes, "outbox full of task results: dropped an output frame");
        return;
      }
    }
    this.store.append(text, critical);
    this.backlog += 1;
  }

  private noteDrop(frames: number, bytes: number, why: string): void {
    if (frames === 0) return;
    this.counters.droppedFrames += frames;
    this.counters.droppedBytes += bytes;
    this.log.connection(
      "outbox_drop",
      `${why} (${frames} frames, ${bytes} bytes; total dropped ${this.counters.droppedFrames})`,
      "warn",
    );
  }

  /**
   * Sends the backlog in batches, stopping at backpressure (resumed by
   * onDrain) and yielding to the event loop between batches so that a large
   * backlog does not starve the daemons.
   */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.ready && !this.blocked && this.backlog > 0) {
        const batch = this.store.peek(DRAIN_BATCH);
        if (batch.length === 0) {
          this.backlog = 0;
          break;
        }
        let lastSent = -1;
        const sent = { frames: 0, bytes: 0 };
        for (const entry of batch) {
          const result = this.sink.send(entry.frame);
          if (result === "dropped") break;
          lastSent = entry.id;
          sent.frames += 1;
          sent.bytes += entry.bytes;
          this.backlog -= 1;
          if (result === "backpressure") {
            this.blocked = true;
            break;
          }
        }
        if (lastSent >= 0) this.store.deleteThrough(lastSent, sent);
        if (lastSent < 0 || this.blocked) break;
        if (batch.length === DRAIN_BATCH && this.backlog > 0) {
          this.clock.setTimeout(() => this.drain(), 0);
          break;
        }
      }
      if (this.backlog === 0 && this.ready) this.backlog = this.store.stats().frames;
    } finally {
      this.draining = false;
      this.updateFlow();
    }
  }
}
