/**
 * Everything for the server goes through here. While the link is
 * authenticated, has no backlog and is not backpressured, a frame is written
 * straight to the socket; otherwise it is appended to the durable outbox,
 * which drains in order, before any newer frame, once the link is back.
 */
import type { Clock, TimerHandle } from "./clock.ts";
import type { EventLog, OutboxDrop, OutboxStore, SendResult } from "./ports.ts";

export interface UpstreamSink {
  send(text: string): SendResult;
  /**
   * Whether the peer accepts a frame this large (a parent relay announces its
   * limit; the Makima server does not, and then every frame fits). A frame
   * that does not fit is never sent: the peer would close the link on it.
   */
  fits?(text: string): boolean;
}

/** What the outbox tells its owner (Upstream) about the pressure on it. */
export interface OutboxListener {
  /**
   * Flow control: `true` while the link is up but cannot take frames as fast
   * as they come (backpressure, or a backlog still draining), so that the
   * daemons' sockets stop being read and the backlog stays in TCP buffers
   * instead of piling up here; `false` once it has caught up. During an
   * outage (link down) it stays `false`: frames then go to the durable outbox.
   */
  flowChanged(congested: boolean): void;
  /**
   * `true` when the outbox holds more than its limit: frames it may not drop
   * (task results) filled it, so it can only grow by reading more; the
   * daemons then stop being read (docs/protocol.md "Durable outbox") until it
   * drains to its limit again, `false`. An outbox full at construction (a
   * restart during an outage) is not told: its owner reads `isFull`.
   */
  fullChanged(full: boolean): void;
}

const UNHEARD: OutboxListener = { flowChanged: () => {}, fullChanged: () => {} };

export interface OutboxCounters {
  droppedFrames: number;
  droppedBytes: number;
}

const DRAIN_BATCH = 512;
/**
 * The delete of sent rows rides on the next append (the same pages); when none
 * comes within this long, it is written on its own (an idle relay), so a crash
 * resends at most what was sent in the last second or so.
 */
export const SENT_DELETE_MS = 1000;
/** Backlog (frames) above which daemons are paused while the link catches up. */
const CONGESTION_BACKLOG = 256;

export class UpstreamOutbox {
  private ready = false;
  private blocked = false;
  private congested = false;
  private draining = false;
  /** Frames for the server not sent yet: in the outbox, or appended and waiting for their commit. */
  private backlog: number;
  /** Appends not committed yet: the rows a drain could not see. */
  private unconfirmed = 0;
  private drainWaiting = false;
  /** Highest outbox id sent; rows up to it are deleted with the next commit (OutboxStore.markSent). */
  private sentThrough = 0;
  /** Writes the delete of sent rows if no commit carried it meanwhile (SENT_DELETE_MS). */
  private deleteTimer: TimerHandle | null = null;
  readonly counters: OutboxCounters = { droppedFrames: 0, droppedBytes: 0 };

  constructor(
    private readonly sink: UpstreamSink,
    private readonly store: OutboxStore,
    private readonly maxBytes: number,
    private readonly clock: Clock,
    private readonly log: EventLog,
    /** See Stores.afterCommit: critical frames leave only once their state is committed. */
    private readonly afterCommit: (fn: () => void) => void = (fn) => fn(),
    private readonly listener: OutboxListener = UNHEARD,
  ) {
    const held = store.stats();
    this.backlog = held.frames;
    this.full = held.bytes > maxBytes;
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
      if (!this.fitsUpstream(text)) return;
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

  /**
   * Whether a frame forwarded now waits in the outbox (no authenticated link,
   * backpressure, or a backlog ahead of it) rather than leaving as soon as
   * its commit does: what a task's timeline says of where its result went.
   */
  get holding(): boolean {
    return !this.ready || this.blocked || this.backlog > CONGESTION_BACKLOG;
  }

  private full = false;

  /** Over its limit with frames it may not drop (see OutboxListener.fullChanged). */
  get isFull(): boolean {
    return this.full;
  }

  /**
   * Judged on committed rows not sent yet, after each append commits and
   * after each drain (a sent row no longer counts: its delete goes with the
   * next commit, ahead of that commit's appends, so it never takes room from
   * them): a non-critical append never leaves the outbox over its limit (it
   * makes room or is refused), so over it means full of frames that may not
   * be dropped. What was read before the pause took effect (one read per
   * socket) is still kept, so it can exceed the limit by that much.
   */
  private readonly updateFull = (): void => {
    const { bytes } = this.store.stats();
    const full = bytes > this.maxBytes;
    if (full === this.full) return;
    this.full = full;
    if (full) {
      this.log.connection(
        "outbox_full",
        `Outbox holds ${bytes} bytes of task results, over its limit of ${this.maxBytes}: daemons are not read until it drains (nothing is dropped)`,
        "warn",
      );
    } else {
      this.log.connection("outbox_full_cleared", `Outbox back within its limit (${bytes} bytes)`);
    }
    this.listener.fullChanged(full);
  };

  private updateFlow(): void {
    // A few critical frames waiting for their commit are not congestion; a backlog is.
    const congested = this.ready && (this.blocked || this.backlog > CONGESTION_BACKLOG);
    if (congested === this.congested) return;
    this.congested = congested;
    this.listener.flowChanged(congested);
  }

  /** What the outbox holds (committed, not sent yet), and how many frames wait to be sent in all. */
  stats(): { frames: number; bytes: number; waiting: number } {
    return { ...this.store.stats(), waiting: this.backlog };
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

  /**
   * Shutdown, before the batch's final flush: the delete of the rows sent
   * since the last commit is written, so that a restart does not send them again.
   */
  stop(): void {
    if (this.deleteTimer !== null) this.clock.clearTimeout(this.deleteTimer);
    this.deleteTimer = null;
    this.store.deleteSent();
  }

  /** Sent through `id`: its delete waits for the next append, or SENT_DELETE_MS at most. */
  private markSent(id: number): void {
    this.sentThrough = id;
    this.store.markSent(id);
    if (this.full) this.updateFull();
    if (this.deleteTimer !== null) return;
    this.deleteTimer = this.clock.setTimeout(() => {
      this.deleteTimer = null;
      this.store.deleteSent();
    }, SENT_DELETE_MS);
  }

  private append(text: string, critical: boolean): void {
    this.backlog += 1;
    this.unconfirmed += 1;
    this.store.append(text, critical, this.maxBytes, this.onStored);
  }

  /** Told once per committed append, with what the size limit dropped, if anything. */
  private readonly onStored = (drop: OutboxDrop | null): void => {
    this.unconfirmed -= 1;
    this.updateFull();
    if (!drop) return;
    this.backlog -= drop.frames;
    this.noteDrop(drop.frames, drop.bytes, "outbox full: dropped oldest output frames");
    if (drop.refused > 0) {
      this.backlog -= 1;
      this.noteDrop(1, drop.refused, "outbox full of task results: dropped an output frame");
    }
    this.updateFlow();
  };

  /** False, with the drop counted and logged, for a frame the peer would refuse for its size. */
  private fitsUpstream(text: string): boolean {
    if (this.sink.fits?.(text) ?? true) return true;
    this.noteDrop(
      1,
      Buffer.byteLength(text),
      "frame larger than the server accepts (its announced frame limit): dropped",
    );
    return false;
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
    let waitForCommit = false;
    try {
      while (this.ready && !this.blocked && this.backlog > 0) {
        // Committed rows only, oldest first: they go out even while later appends wait
        // for a commit (a full disk), since every one of them is older than those.
        const batch = this.store.peekAfter(this.sentThrough, DRAIN_BATCH);
        if (batch.length === 0) {
          // The rest was appended but is not committed yet: it goes once it is.
          if (this.unconfirmed > 0) waitForCommit = true;
          // Nothing committed is left and nothing waits: a count that drifted (a write dropped as a bug) heals here.
          else this.backlog = 0;
          break;
        }
        let lastSent = -1;
        for (const entry of batch) {
          // Too large for the peer: sending it would close the link, and every reconnect again.
          const result = this.fitsUpstream(entry.frame) ? this.sink.send(entry.frame) : "sent";
          if (result === "dropped") break;
          lastSent = entry.id;
          this.backlog -= 1;
          if (result === "backpressure") {
            this.blocked = true;
            break;
          }
        }
        if (lastSent >= 0) this.markSent(lastSent);
        if (lastSent < 0 || this.blocked) break;
        if (batch.length === DRAIN_BATCH && this.backlog > 0) {
          this.clock.setTimeout(this.drainSoon, 0);
          break;
        }
      }
    } finally {
      this.draining = false;
      this.updateFlow();
    }
    if (waitForCommit) this.drainAfterCommit();
  }

  /** One drain waits for the next commit, however often it is asked for meanwhile. */
  private drainAfterCommit(): void {
    if (this.drainWaiting) return;
    this.drainWaiting = true;
    let deferring = true;
    this.afterCommit(() => {
      this.drainWaiting = false;
      // Run at once: nothing is waiting for a commit, so no append can be unconfirmed.
      if (deferring) this.unconfirmed = 0;
      this.drain();
    });
    deferring = false;
  }
}
