/**
 * The relay's own heartbeat to its server: every `heartbeatMs` while the link
 * is authenticated, once the writes before it are committed (it lists tasks,
 * and names none the database could still forget), straight to the socket
 * (a stale heartbeat means nothing, so never through the outbox).
 */
import { encodeHeartbeatParts } from "../protocol/encode.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { EventLog } from "./ports.ts";

/** 1 MiB: MAKIMA_RELAY_MAX_FRAME_BYTES' default, the frame limit a server most likely has too. */
const COMMON_FRAME_LIMIT = 1024 * 1024;

export interface HeartbeatDeps {
  intervalMs: number;
  clock: Clock;
  log: EventLog;
  /** The tasks the next heartbeat lists. */
  tasks(): string[];
  /** Stores.afterCommit. */
  afterCommit(fn: () => void): void;
}

/** Where a heartbeat goes: the link's open socket, or nothing once it is no longer open. */
export type HeartbeatSend = ((text: string) => void) | null;

export class UpstreamHeartbeat {
  /** When the last heartbeat was sent. */
  lastAt: number | null = null;
  private timer: TimerHandle | null = null;
  /** At most one waits for a commit: while commits fail, heartbeats do not pile up. */
  private waiting = false;
  /** A heartbeat too large for a 1 MiB frame limit was logged on this link (once per link). */
  private warnedLarge = false;
  private send: () => HeartbeatSend = () => null;
  private peerMaxFrameBytes: number | null = null;

  constructor(private readonly deps: HeartbeatDeps) {}

  /**
   * A link authenticated: beat while `send()` gives a socket. Within the
   * peer's announced frame limit the heartbeat goes in parts
   * (docs/protocol.md "Heartbeat parts").
   */
  start(send: () => HeartbeatSend, peerMaxFrameBytes: number | null): void {
    this.stop();
    this.send = send;
    this.peerMaxFrameBytes = peerMaxFrameBytes;
    this.warnedLarge = false;
    this.schedule();
  }

  stop(): void {
    if (this.timer !== null) this.deps.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = null;
      if (this.send() === null) return;
      this.schedule();
      if (this.waiting) return;
      this.waiting = true;
      this.deps.afterCommit(this.beat);
    }, this.deps.intervalMs);
  }

  private readonly beat = (): void => {
    this.waiting = false;
    const send = this.send();
    if (send === null) return;
    const { parts, unlisted } = encodeHeartbeatParts(this.deps.tasks(), this.peerMaxFrameBytes);
    for (const part of parts) send(part);
    this.lastAt = this.deps.clock.now();
    if (this.peerMaxFrameBytes === null) this.warnIfLarge(parts[0] as string);
    if (unlisted.length > 0) {
      this.deps.log.connection(
        "heartbeat_unlisted",
        `${unlisted.length} task ids are too long for the server's frame limit of ${this.peerMaxFrameBytes} bytes and are left out of the heartbeat`,
        "warn",
      );
    }
  };

  /**
   * The Makima server takes one heartbeat listing every task and announces no
   * frame limit: say so (once per link) when the heartbeat outgrows the limit
   * relays apply by default, the likeliest limit of a server too.
   */
  private warnIfLarge(heartbeat: string): void {
    if (this.warnedLarge || heartbeat.length <= COMMON_FRAME_LIMIT / 3) return;
    const bytes = Buffer.byteLength(heartbeat);
    if (bytes <= COMMON_FRAME_LIMIT) return;
    this.warnedLarge = true;
    this.deps.log.connection(
      "heartbeat_large",
      `Heartbeat of ${bytes} bytes (${this.deps.tasks().length} unended tasks): a server with a 1 MiB frame limit closes the link on it (docs/running-many-relays.md "Sizing")`,
      "warn",
    );
  }
}
