/**
 * The link to the Makima server as an explicit state machine: one connect at a
 * time, a connect timeout, capped exponential backoff with jitter, reconnects
 * scheduled only from `close` (an error is always followed by a close).
 */

import {
  encodeAuthenticate,
  encodeCapacityUpdate,
  type RelayIdentity,
} from "../protocol/encode.ts";
import { parseServerFrame } from "../protocol/parse.ts";
import { redactUrl } from "../protocol/url.ts";
import { type BackoffPolicy, backoffDelay } from "./backoff.ts";
import type { Clock, Jitter, TimerHandle } from "./clock.ts";
import type { EventLog, SendResult } from "./ports.ts";
import { type HeartbeatSend, UpstreamHeartbeat } from "./upstream-heartbeat.ts";
import type { UpstreamHandlers, UpstreamSocket, UpstreamTransport } from "./upstream-socket.ts";

/**
 * How long an authenticated link must stay up before its reconnect attempts
 * count from zero again. A server that accepts and drops at once would
 * otherwise get a tight reconnect loop: each success resetting the backoff.
 */
export const STABLE_LINK_MS = 30_000;

/** Links in a row that dropped before STABLE_LINK_MS, from which the link is "flapping". */
const FLAPPING_AFTER = 2;

export type LinkState =
  | { kind: "unconfigured"; reason: string }
  | { kind: "idle" }
  | { kind: "connecting"; since: number }
  | { kind: "authenticating"; since: number }
  | { kind: "open"; daemonId: string; since: number }
  | { kind: "backoff"; until: number }
  | { kind: "stopped"; reason: string };

export interface UpstreamLinkOptions extends BackoffPolicy {
  url: string | null;
  /** Why the link cannot start (missing URL or key), logged once. */
  unconfiguredReason: string | null;
  maxReconnects: number | null;
  connectTimeoutMs: number;
  heartbeatMs: number;
  /** STABLE_LINK_MS unless told (tests). */
  stableMs?: number;
}

export interface UpstreamEvents {
  onAuthenticated(daemonId: string): void;
  onFrame(text: string): void;
  onDown(): void;
  onDrain(): void;
  heartbeatTasks(): string[];
  /**
   * Runs `fn` once the relay's writes so far are committed (Stores.afterCommit):
   * the heartbeat lists tasks, and names none the database could still forget.
   */
  afterCommit?(fn: () => void): void;
}

export class UpstreamLink {
  private current: LinkState;
  private socket: UpstreamSocket | null = null;
  private timer: TimerHandle | null = null;
  private attempts = 0;
  /** The capacity the server last heard from us (authenticate or capacityUpdate). */
  private advertised = 0;
  lastConnectedAt: number | null = null;
  /** Total reconnects scheduled since start (for metrics). */
  reconnectsTotal = 0;
  /**
   * Authenticated links that closed without the relay asking (for /status and
   * /metrics): a link that drops at every heartbeat shows here even though
   * each reconnect succeeds and resets `reconnectAttempts`.
   */
  linkDrops = 0;
  /** The last close of an upstream socket the relay did not ask for (any state), and why. */
  lastDisconnectAt: number | null = null;
  lastDisconnectReason: string | null = null;
  /**
   * The largest frame the peer reads, in bytes, when it announced one (a
   * parent relay does in `authenticated`; the Makima server does not: null).
   */
  private peerMaxFrameBytes: number | null = null;
  /** Not reading the server (commits fail); applies to every socket until lifted. */
  private paused = false;
  private readonly heartbeat: UpstreamHeartbeat;
  /** Authenticated links in a row that dropped before they were stable (see STABLE_LINK_MS). */
  private shortLinks = 0;

  constructor(
    private readonly opts: UpstreamLinkOptions,
    private readonly identity: () => RelayIdentity,
    private readonly transport: UpstreamTransport,
    private readonly events: UpstreamEvents,
    private readonly clock: Clock,
    private readonly jitter: Jitter,
    private readonly log: EventLog,
  ) {
    // Without a key (unconfiguredReason says which is missing) it does not connect at all.
    this.current =
      opts.url && opts.unconfiguredReason === null
        ? { kind: "idle" }
        : { kind: "unconfigured", reason: opts.unconfiguredReason ?? "no server URL" };
    this.heartbeat = new UpstreamHeartbeat({
      intervalMs: opts.heartbeatMs,
      clock,
      log,
      tasks: () => events.heartbeatTasks(),
      afterCommit: events.afterCommit ?? ((fn) => fn()),
    });
  }

  /** When the relay last sent its own heartbeat upstream. */
  get lastHeartbeatAt(): number | null {
    return this.heartbeat.lastAt;
  }

  /** The open socket's send, for the heartbeat; null once the link is not open. */
  private readonly openSend = (): HeartbeatSend => {
    const socket = this.socket;
    if (this.current.kind !== "open" || !socket) return null;
    return (text) => socket.send(text);
  };

  get state(): LinkState {
    return this.current;
  }

  /** Reconnects in a row; back to 0 once a link has stayed up STABLE_LINK_MS. */
  get reconnectAttempts(): number {
    this.settleAttempts();
    return this.attempts;
  }

  /**
   * The last authenticated links (FLAPPING_AFTER or more in a row) each
   * dropped before they were stable: the server accepts and then drops.
   */
  get flapping(): boolean {
    return this.shortLinks >= FLAPPING_AFTER;
  }

  /** A link up for STABLE_LINK_MS is a stable one: its reconnects start from zero again. */
  private settleAttempts(): void {
    const stableMs = this.opts.stableMs ?? STABLE_LINK_MS;
    if (this.current.kind !== "open" || this.clock.now() - this.current.since < stableMs) return;
    this.attempts = 0;
    this.shortLinks = 0;
  }

  get authenticated(): boolean {
    return this.current.kind === "open";
  }

  get daemonId(): string | null {
    return this.current.kind === "open" ? this.current.daemonId : null;
  }

  start(): void {
    if (this.current.kind === "unconfigured") {
      this.log.connection(
        "upstream_unconfigured",
        `Upstream link not started: ${this.current.reason}`,
        "warn",
      );
      return;
    }
    if (this.current.kind === "idle") this.connect();
  }

  /**
   * Waits (bounded) until frames already written to the socket have left the
   * process, so that a clean shutdown does not drop what was counted as sent.
   */
  async flush(timeoutMs: number, pollMs = 5): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    while ((this.socket?.bufferedAmount?.() ?? 0) > 0 && this.clock.now() < deadline) {
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, pollMs));
    }
  }

  /** Closes the link for good (shutdown). */
  stop(): void {
    if (this.current.kind === "unconfigured") return;
    this.clearTimers();
    this.current = { kind: "stopped", reason: "relay stopping" };
    this.dropSocket(1000, "relay shutting down");
  }

  /**
   * Operator-forced reconnect (or a changed API key): a fresh connection with
   * the attempt counter reset; the old socket closes with 1000 and `why`.
   */
  reconnectNow(why = "Manual reconnect requested"): { success: boolean; message: string } {
    if (this.current.kind === "unconfigured") {
      return { success: false, message: `Upstream not configured: ${this.current.reason}` };
    }
    this.clearTimers();
    const wasOpen = this.current.kind === "open";
    this.current = { kind: "idle" };
    this.dropSocket(1000, why);
    if (wasOpen) this.events.onDown();
    this.attempts = 0;
    this.shortLinks = 0;
    this.connect();
    return { success: true, message: "Reconnection initiated" };
  }

  /**
   * Whether the link can run changed (a reload re-read the API key): a reason
   * stops it and says why (unconfigured); null starts a link that could not
   * run before. A link that can run and still can is left alone.
   */
  reconfigure(unconfiguredReason: string | null): void {
    const reason = this.opts.url ? unconfiguredReason : (unconfiguredReason ?? "no server URL");
    if (reason !== null) {
      if (this.current.kind === "unconfigured") return;
      const wasOpen = this.current.kind === "open";
      this.clearTimers();
      this.current = { kind: "unconfigured", reason };
      this.dropSocket(1000, "upstream no longer configured");
      if (wasOpen) this.events.onDown();
      this.start();
      return;
    }
    if (this.current.kind !== "unconfigured") return;
    this.current = { kind: "idle" };
    this.attempts = 0;
    this.start();
  }

  /**
   * Relay-to-relay extension: tells a parent relay our capacity changed. Only
   * called in `auto` mode; sent straight away, never queued (a stale capacity
   * means nothing: the next authenticate carries the current one, and a change
   * during the handshake follows it once the link is open).
   */
  advertiseCapacity(capacity: number): void {
    if (this.current.kind !== "open" || !this.socket || capacity === this.advertised) return;
    this.advertised = capacity;
    this.socket.send(encodeCapacityUpdate(capacity));
  }

  send(text: string): SendResult {
    if (this.current.kind !== "open" || !this.socket) return "dropped";
    return this.socket.send(text);
  }

  /** Whether the peer accepts a frame this large (UpstreamSink.fits). */
  fits(text: string): boolean {
    const max = this.peerMaxFrameBytes;
    // A UTF-8 byte is at least a UTF-16 unit, at most three: most frames skip the count.
    return max === null || text.length * 3 <= max || Buffer.byteLength(text) <= max;
  }

  /** Stops or resumes reading the server (docs/protocol.md "Storage failures"). */
  setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    // A handshake in progress goes on: its answer writes nothing, and an authenticated
    // link lets the outbox send what is already committed (room on a full disk).
    if (paused && this.current.kind !== "open") return;
    if (paused) this.socket?.pause?.();
    else this.socket?.resume?.();
  }

  private connect(): void {
    const url = this.opts.url as string;
    this.current = { kind: "connecting", since: this.clock.now() };
    let socket: UpstreamSocket | null = null;
    const mine = (): boolean => socket !== null && socket === this.socket;
    const handlers: UpstreamHandlers = {
      onOpen: () => {
        if (!mine() || !socket) return;
        this.current = { kind: "authenticating", since: this.clock.now() };
        const identity = this.identity();
        this.advertised = identity.maxConcurrentTasks;
        socket.send(encodeAuthenticate(identity));
      },
      onMessage: (text) => {
        if (mine()) this.onMessage(text);
      },
      onClose: (code, reason) => {
        if (mine()) this.onClose(code, reason);
      },
      onError: (message) => {
        if (mine())
          this.log.connection("upstream_error", `Upstream socket error: ${message}`, "warn");
      },
      onDrain: () => {
        if (mine() && this.current.kind === "open") this.events.onDrain();
      },
    };
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.log.connection(
        "upstream_timeout",
        `No authenticated link within ${this.opts.connectTimeoutMs} ms`,
        "warn",
      );
      this.socket?.terminate();
    }, this.opts.connectTimeoutMs);
    try {
      socket = this.transport(url, handlers);
      this.socket = socket;
    } catch (err) {
      this.log.connection("upstream_error", `Failed to connect: ${(err as Error).message}`, "warn");
      this.socket = null;
      this.onClose(1006, "connect failed");
    }
  }

  private onMessage(text: string): void {
    if (this.current.kind === "open") {
      this.events.onFrame(text);
      return;
    }
    const parsed = parseServerFrame(text);
    if (parsed.ok && parsed.value.kind === "authenticated") {
      this.clearTimers();
      this.current = { kind: "open", daemonId: parsed.value.daemonId, since: this.clock.now() };
      this.peerMaxFrameBytes = parsed.value.maxFrameBytes ?? null;
      this.lastConnectedAt = this.clock.now();
      this.log.connection(
        "authenticated",
        `Authenticated upstream as daemon ${parsed.value.daemonId}`,
      );
      // advertiseCapacity sends only on an open link: a change made while the
      // server was still answering authenticate is told now.
      this.advertiseCapacity(this.identity().maxConcurrentTasks);
      this.heartbeat.start(this.openSend, this.peerMaxFrameBytes);
      if (this.paused) this.socket?.pause?.();
      this.events.onAuthenticated(parsed.value.daemonId);
      return;
    }
    const what = parsed.ok
      ? parsed.value.kind === "other"
        ? parsed.value.type
        : parsed.value.kind
      : "invalid frame";
    this.log.connection("upstream_rejected", `Server answered authenticate with ${what}`, "warn");
  }

  private onClose(code: number, reason: string): void {
    const wasOpen = this.current.kind === "open";
    this.settleAttempts();
    if (this.current.kind === "open") this.noteDrop(this.current.since);
    this.socket = null;
    this.clearTimers();
    this.lastDisconnectAt = this.clock.now();
    this.lastDisconnectReason = `code ${code}${reason ? `: ${reason}` : ""}`;
    this.log.connection(
      "disconnected",
      `Upstream disconnected: code=${code} reason=${reason || "-"}`,
      "warn",
    );
    if (wasOpen) this.events.onDown();
    if (this.current.kind === "stopped") return;
    this.scheduleReconnect();
  }

  /** An authenticated link up since `since` dropped: a short one in a row of them is flapping. */
  private noteDrop(since: number): void {
    this.linkDrops += 1;
    const stableMs = this.opts.stableMs ?? STABLE_LINK_MS;
    if (this.clock.now() - since >= stableMs) return; // settled: attempts and shortLinks are 0
    this.shortLinks += 1;
    if (this.shortLinks !== FLAPPING_AFTER) return;
    this.log.connection(
      "upstream_flapping",
      `The server dropped the last ${FLAPPING_AFTER} links within ${stableMs} ms of authenticating; reconnects back off as if they had failed`,
      "warn",
    );
  }

  private scheduleReconnect(): void {
    const max = this.opts.maxReconnects;
    if (max !== null && this.attempts >= max) {
      this.current = { kind: "stopped", reason: `gave up after ${max} reconnect attempts` };
      this.log.connection(
        "upstream_gave_up",
        `Max reconnect attempts (${max}) reached; use POST /reconnect`,
        "error",
      );
      return;
    }
    const delay = Math.round(backoffDelay(this.attempts, this.opts, this.jitter));
    this.attempts += 1;
    this.reconnectsTotal += 1;
    this.current = { kind: "backoff", until: this.clock.now() + delay };
    this.log.connection(
      "reconnecting",
      `Reconnecting to ${redactUrl(this.opts.url as string)} in ${delay} ms (attempt ${this.attempts})`,
    );
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  private clearTimers(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.heartbeat.stop();
  }

  private dropSocket(code: number, reason: string): void {
    const socket = this.socket;
    this.socket = null;
    socket?.close(code, reason);
  }
}
