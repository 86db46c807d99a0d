/**
 * Everything the relay says to and hears from its server, as one part: the
 * link (the socket's state machine, upstream-link.ts) and the outbox (what
 * waits for it, upstream-outbox.ts). It takes what it needs when it is built
 * and tells one listener what happened, as one event union; the composition
 * root only wires it to the relay core.
 */
import type { RelayIdentity } from "../protocol/encode.ts";
import { MAX_CAPACITY } from "../protocol/messages.ts";
import type { Clock, Jitter } from "./clock.ts";
import type { EventLog, OutboxStore } from "./ports.ts";
import { UpstreamLink, type UpstreamLinkOptions } from "./upstream-link.ts";
import { UpstreamOutbox } from "./upstream-outbox.ts";
import type { UpstreamTransport } from "./upstream-socket.ts";

/** What the upstream tells the relay core. */
export type UpstreamEvent =
  | { kind: "authenticated"; daemonId: string }
  /** A frame from the server, once authenticated. */
  | { kind: "frame"; text: string }
  /** An authenticated link went down. */
  | { kind: "down" }
  /** The link is up but cannot take frames as fast as they come (UpstreamOutbox flow control). */
  | { kind: "congested"; congested: boolean }
  /** The outbox is over its limit with frames it may not drop (UpstreamOutbox full). */
  | { kind: "outboxFull"; full: boolean };

export interface UpstreamListener {
  upstreamEvent(event: UpstreamEvent): void;
  /** The tasks the next heartbeat lists (asked when it is due). */
  heartbeatTasks(): string[];
}

export interface UpstreamOptions extends UpstreamLinkOptions {
  /** Who the relay says it is (its capacity is kept here: see `advertiseCapacity`). */
  identity: Omit<RelayIdentity, "maxConcurrentTasks">;
  /** A fixed advertised capacity, or `auto`: the sum of the connected daemons' capacities. */
  capacity: number | "auto";
  outboxMaxBytes: number;
}

export interface UpstreamDeps {
  transport: UpstreamTransport;
  outboxStore: OutboxStore;
  /** Stores.afterCommit: critical frames and heartbeats wait for the writes before them. */
  afterCommit: (fn: () => void) => void;
  clock: Clock;
  jitter: Jitter;
  log: EventLog;
  /** A bug triggered by one server frame must not end the link or the relay. */
  reportBug: (where: string, err: unknown) => void;
}

export class Upstream {
  readonly link: UpstreamLink;
  readonly outbox: UpstreamOutbox;
  private listener: UpstreamListener | null = null;
  /** The capacity authenticate announces: fixed, or the daemons' sum last told (auto). */
  private capacity: number;
  /** The key authenticate presents (setApiKey changes it). */
  private apiKey: string;

  constructor(
    private readonly opts: UpstreamOptions,
    private readonly deps: UpstreamDeps,
  ) {
    this.capacity = opts.capacity === "auto" ? 0 : opts.capacity;
    this.apiKey = opts.identity.apiKey;
    this.link = new UpstreamLink(
      opts,
      () => ({ ...opts.identity, apiKey: this.apiKey, maxConcurrentTasks: this.capacity }),
      deps.transport,
      {
        onAuthenticated: (daemonId) => {
          this.outbox.onAuthenticated();
          this.emit({ kind: "authenticated", daemonId });
        },
        onFrame: (text) => this.emit({ kind: "frame", text }),
        onDown: () => {
          this.outbox.onDown();
          this.emit({ kind: "down" });
        },
        onDrain: () => this.outbox.onDrain(),
        heartbeatTasks: () => this.listener?.heartbeatTasks() ?? [],
        afterCommit: deps.afterCommit,
      },
      deps.clock,
      deps.jitter,
      deps.log,
    );
    this.outbox = new UpstreamOutbox(
      this.link,
      deps.outboxStore,
      opts.outboxMaxBytes,
      deps.clock,
      deps.log,
      deps.afterCommit,
      {
        flowChanged: (congested) => this.emit({ kind: "congested", congested }),
        fullChanged: (full) => this.emit({ kind: "outboxFull", full }),
      },
    );
  }

  /**
   * The relay core listens (one listener, before `start`). An outbox already
   * over its limit (a restart during an outage) is told at once.
   */
  listen(listener: UpstreamListener): void {
    this.listener = listener;
    if (this.outbox.isFull) this.emit({ kind: "outboxFull", full: true });
  }

  start(): void {
    this.link.start();
  }

  /** Hands a frame to the server: now, or through the outbox (UpstreamOutbox.forward). */
  forward(text: string, critical: boolean): void {
    this.outbox.forward(text, critical);
  }

  /** Would a frame forwarded now wait in the outbox? (UpstreamOutbox.holding) */
  holding(): boolean {
    return this.outbox.holding;
  }

  /** Stops or resumes reading the server (commits failing: docs/protocol.md "Storage failures"). */
  setPaused(paused: boolean): void {
    this.link.setPaused(paused);
  }

  /** The connected daemons' capacities add up to `total` now; `auto` tells the server. */
  advertiseCapacity(total: number): void {
    if (this.opts.capacity !== "auto") return;
    this.capacity = Math.min(total, MAX_CAPACITY);
    this.link.advertiseCapacity(this.capacity);
  }

  /**
   * The API key re-read at a reload. A changed key re-authenticates: the
   * link reconnects at once and presents it (frames wait in the outbox
   * meanwhile). `unconfiguredReason` says whether the link can run at all with
   * it (no key: it stops; a first key: it starts). True when the key changed.
   */
  setApiKey(apiKey: string, unconfiguredReason: string | null): boolean {
    if (apiKey === this.apiKey) return false;
    this.apiKey = apiKey;
    const wasRunning = this.link.state.kind !== "unconfigured";
    this.link.reconfigure(unconfiguredReason);
    if (wasRunning && unconfiguredReason === null) this.link.reconnectNow("API key changed");
    return true;
  }

  /**
   * Shutdown: waits (bounded) for written frames to leave, then closes the
   * link with 1000 and writes the delete of what was sent (UpstreamOutbox.stop),
   * for the storage's final flush to commit.
   */
  async stop(flushMs: number): Promise<void> {
    await this.link.flush(flushMs);
    this.link.stop();
    this.outbox.stop();
  }

  private emit(event: UpstreamEvent): void {
    if (!this.listener) return;
    try {
      this.listener.upstreamEvent(event);
    } catch (err) {
      this.deps.reportBug(`upstream ${event.kind}`, err);
    }
  }
}
