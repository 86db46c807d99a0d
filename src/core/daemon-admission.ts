/**
 * Getting in (docs/protocol.md "Authentication"): a socket must send a valid
 * `authenticate` with an accepted key as its first frame, within the auth
 * timeout; anything else is answered with an error frame and close 4401.
 * A daemon admitted with a machineId that is already connected replaces the
 * older connection (4409).
 */
import { encodeAuthenticated, encodeError } from "../protocol/encode.ts";
import { CloseCode } from "../protocol/messages.ts";
import { type DaemonFrame, parseDaemonFrame } from "../protocol/parse.ts";
import type { Clock } from "./clock.ts";
import type { Daemon, DaemonRegistry } from "./daemon-registry.ts";
import type { DaemonConnection, EventLog, Stores } from "./ports.ts";
import { TokenBucket } from "./rate-limit.ts";

export interface AdmissionOptions {
  authTimeoutMs: number;
  daemonRate: number;
  daemonBurst: number;
  /** The frame limit of the daemon socket server, announced to child relays in `authenticated`. */
  maxFrameBytes?: number;
  /** Constant-time check of a daemon's apiKey. */
  acceptKey(key: string): boolean;
  newId(): string;
}

type AuthenticateFrame = Extract<DaemonFrame, { kind: "authenticate" }>;

export class DaemonAdmission {
  constructor(
    private readonly opts: AdmissionOptions,
    private readonly stores: Pick<Stores, "afterCommit">,
    private readonly registry: DaemonRegistry,
    private readonly clock: Clock,
    private readonly log: EventLog,
    private readonly admitted: (daemon: Daemon, previous: Daemon | undefined) => void,
  ) {}

  /** A new socket: it has until the auth timeout to authenticate. */
  opened(conn: DaemonConnection): void {
    const timer = this.clock.setTimeout(() => {
      if (this.registry.takeUnauthenticated(conn.id) === undefined) return;
      this.reject(conn, "unauthorized", "no authenticate frame within the auth timeout");
    }, this.opts.authTimeoutMs);
    this.registry.addUnauthenticated(conn, this.clock.now(), timer);
  }

  /** The first frame of a socket not yet authenticated. */
  firstFrame(conn: DaemonConnection, text: string): void {
    const timer = this.registry.takeUnauthenticated(conn.id);
    if (timer === undefined) return; // already rejected, closing
    this.clock.clearTimeout(timer);
    const parsed = parseDaemonFrame(text);
    if (!parsed.ok) {
      this.reject(conn, "badMessage", parsed.error.message);
    } else if (parsed.value.kind !== "authenticate") {
      this.reject(conn, "badMessage", "the first frame must be authenticate");
    } else if (!this.opts.acceptKey(parsed.value.apiKey)) {
      this.reject(conn, "unauthorized", "invalid API key");
    } else {
      this.admit(conn, parsed.value);
    }
  }

  /** A socket closed: forget it if it never authenticated. */
  closed(conn: DaemonConnection): void {
    const timer = this.registry.takeUnauthenticated(conn.id);
    if (timer !== undefined) this.clock.clearTimeout(timer);
  }

  /** Before authentication every problem is fatal: an error frame, then 4401. */
  reject(conn: DaemonConnection, code: "badMessage" | "unauthorized", message: string): void {
    this.closed(conn);
    this.stores.afterCommit(() => {
      conn.send(encodeError(code, message));
      conn.close(
        CloseCode.unauthenticated,
        code === "unauthorized" ? "unauthorized" : "bad authenticate",
      );
    });
    this.log.connection(
      "auth_failed",
      `Daemon from ${conn.remoteAddress} rejected: ${message}`,
      "warn",
    );
  }

  private admit(conn: DaemonConnection, auth: AuthenticateFrame): void {
    const now = this.clock.now();
    const previous = this.registry.byMachineId(auth.machineId);
    const relay = auth.role === "relay";
    const daemon = this.registry.add({
      conn,
      daemonId: this.opts.newId(),
      machineId: auth.machineId,
      hostname: auth.hostname,
      role: relay ? "relay" : "daemon",
      capacity: auth.capacity,
      tasks: new Set(),
      connectedAt: now,
      lastSeen: now,
      lastHeartbeat: null,
      backpressured: false,
      reconcile: null,
      retired: false,
      // Child relays are exempt: their own daemons are limited at the child.
      limiter: relay ? null : new TokenBucket(this.opts.daemonRate, this.opts.daemonBurst, now),
      throttle: null,
      lastThrottleEnd: Number.NEGATIVE_INFINITY,
      reading: true,
      readingSince: now,
    });
    // A child relay learns our frame limit, so that it never sends a frame we would refuse.
    const limit = relay ? this.opts.maxFrameBytes : undefined;
    this.stores.afterCommit(() => conn.send(encodeAuthenticated(daemon.daemonId, limit)));
    this.log.connection(
      "downstream_connect",
      `Daemon ${auth.hostname} (${auth.machineId}) authenticated as ${daemon.daemonId}, capacity ${auth.capacity}`,
    );
    if (previous) {
      // Retired first: its close handler (run synchronously by close) must leave its tasks alone.
      previous.retired = true;
      this.registry.changed(previous);
      this.log.connection(
        "daemon_replaced",
        `Daemon ${previous.daemonId} replaced by ${daemon.daemonId}`,
      );
      previous.conn.close(CloseCode.replaced, "replaced by a newer connection");
    }
    this.admitted(daemon, previous);
  }
}
