/**
 * Sockets without a network, modelling what the relay relies on from TCP: in
 * order, nothing lost while the connection lives, and backpressure instead of
 * loss when the reader stops. A paused daemon socket keeps what the daemon
 * writes and delivers it once resumed; a few frames already read when the
 * pause came may still arrive (Bun hands over what it had read).
 */
import type { DaemonConnection, SendResult } from "../core/ports.ts";
import type { UpstreamHandlers, UpstreamSocket } from "../core/upstream-socket.ts";
import type { Prng } from "./prng.ts";

export interface DaemonConnHooks {
  /** The relay wrote a frame: the daemon's side of the socket now has it. */
  sent(conn: SimDaemonConn, text: string): void;
  /** The relay closed the socket (Bun runs the close handler synchronously). */
  closedByRelay(conn: SimDaemonConn, code: number, reason: string): void;
  /** Frames the daemon wrote that the relay never read: gone with the connection. */
  unread(conn: SimDaemonConn, frames: readonly string[]): void;
}

export class SimDaemonConn implements DaemonConnection {
  /** Written by the daemon, not yet read by the relay. */
  readonly outbound: string[] = [];
  /** Written by the relay, not yet processed by the daemon. */
  inbox: string[] = [];
  reading = true;
  private alreadyRead = 0;
  closed: { code: number; reason: string } | null = null;
  /** Sends report backpressure (the frame is still buffered) until the world drains it. */
  backpressured = false;
  /** Planted bug: frames written while paused vanish instead of waiting. */
  dropWhilePaused = false;

  constructor(
    readonly id: string,
    readonly machineId: string,
    readonly remoteAddress: string,
    private readonly hooks: DaemonConnHooks,
    private readonly prng: Prng,
  ) {}

  send(text: string): SendResult {
    if (this.closed) return "dropped";
    this.inbox.push(text);
    this.hooks.sent(this, text);
    return this.backpressured ? "backpressure" : "sent";
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.end(code, reason);
    this.hooks.closedByRelay(this, code, reason);
  }

  /** The connection is gone (either side, or the relay process died). */
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    if (this.outbound.length > 0) this.hooks.unread(this, this.outbound.splice(0));
  }

  pause(): void {
    if (!this.reading) return;
    this.reading = false;
    this.alreadyRead = this.prng.int(0, 3);
  }

  resume(): void {
    this.reading = true;
    this.alreadyRead = 0;
  }

  /** The daemon writes a frame; it waits in the socket until the relay reads it. */
  write(text: string): void {
    if (this.closed) return;
    if (this.dropWhilePaused && !this.reading) return;
    this.outbound.push(text);
  }

  /** The next frame the relay would read now, if any. */
  nextReadable(): string | undefined {
    if (this.closed || this.outbound.length === 0) return undefined;
    if (!this.reading) {
      if (this.alreadyRead === 0) return undefined;
      this.alreadyRead -= 1;
    }
    return this.outbound.shift();
  }
}

export type UpstreamEvent =
  | { kind: "open" }
  | { kind: "message"; text: string }
  | { kind: "close"; code: number; reason: string }
  | { kind: "error"; message: string };

export interface UpstreamPeer {
  /** The relay wrote a frame: the server has it (delivery is synchronous, so none is in flight). */
  received(socket: SimUpstreamSocket, text: string): void;
  /** The relay closed or terminated the socket. */
  closedByRelay(socket: SimUpstreamSocket): void;
}

/** The relay's upstream socket; events for the link wait here until the world delivers them. */
export class SimUpstreamSocket implements UpstreamSocket {
  readonly events: UpstreamEvent[] = [];
  reading = true;
  private alreadyRead = 0;
  /** No more frames go through (either side closed it). */
  closed = false;
  backpressured = false;

  constructor(
    readonly handlers: UpstreamHandlers,
    private readonly peer: UpstreamPeer,
    private readonly prng: Prng,
  ) {}

  send(text: string): SendResult {
    if (this.closed) return "dropped";
    this.peer.received(this, text);
    return this.backpressured ? "backpressure" : "sent";
  }

  close(_code: number, _reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.events.length = 0;
    this.peer.closedByRelay(this);
  }

  /** Like Bun's: the close event follows. */
  terminate(): void {
    if (this.closed) return;
    this.closed = true;
    this.events.length = 0;
    this.events.push({ kind: "close", code: 1006, reason: "terminated" });
    this.peer.closedByRelay(this);
  }

  pause(): void {
    if (!this.reading) return;
    this.reading = false;
    this.alreadyRead = this.prng.int(0, 2);
  }

  resume(): void {
    this.reading = true;
    this.alreadyRead = 0;
  }

  /** The next event for the link; a close behind unread messages still arrives. */
  nextEvent(): UpstreamEvent | undefined {
    const head = this.events[0];
    if (!head) return undefined;
    if (head.kind === "message" && !this.reading) {
      if (this.alreadyRead > 0) {
        this.alreadyRead -= 1;
        return this.events.shift();
      }
      const closeAt = this.events.findIndex((e) => e.kind === "close");
      if (closeAt < 0) return undefined;
      this.events.splice(0, closeAt);
    }
    return this.events.shift();
  }
}
