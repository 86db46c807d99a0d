/**
 * Getting in (docs/protocol.md "Authentication"): a socket must send a valid
 * `authenticate` with an accepted key as its first frame, within the auth
 * timeout; anything else is answered with an error frame and close 4401.
 * A machineId belongs to the key it first authenticated with: a daemon
 * admitted with a machineId already connected, with the same key, replaces
 * the older connection (4409); one with another key is refused (4401).
 *
 * What an unauthenticated socket may cost is bounded: sockets awaiting
 * authenticate are capped, overall and per source address; under pressure a
 * socket that sends nothing is closed sooner; a first frame too large to be a
 * real `authenticate` is refused without being parsed; and repeated failures
 * from one address are one row in the connection log, not one each.
 */
import { encodeAuthenticated, encodeError } from "../protocol/encode.ts";
import { CloseCode } from "../protocol/messages.ts";
import { type DaemonFrame, parseDaemonFrame } from "../protocol/parse.ts";
import { err, ok, type Result } from "../protocol/result.ts";
import type { Clock } from "./clock.ts";
import type { Daemon } from "./daemon.ts";
import type { DaemonRegistry } from "./daemon-registry.ts";
import { createKeyCheck } from "./key-check.ts";
import { MachineBindings } from "./machine-bindings.ts";
import type { DaemonConnection, EventLog, Stores } from "./ports.ts";
import { RepeatedEvents } from "./repeated-events.ts";

/**
 * A first frame longer than this is refused unparsed (badMessage, 4401). A real
 * `authenticate` is a few hundred characters (machineId and hostname are at
 * most 256 each); parsing a 1 MiB frame from a stranger stalls every other
 * socket for tens of milliseconds.
 */
export const MAX_FIRST_FRAME_CHARS = 64 * 1024;
/**
 * Under pressure (a quarter of either cap on sockets awaiting authenticate in
 * use), a new socket has this long, at most, for its first frame: a real
 * daemon sends `authenticate` as soon as it is connected, and idle sockets
 * then free their slot sooner than the auth timeout would.
 */
export const PRESSED_FIRST_FRAME_MS = 2000;

export const TAKEOVER_REFUSED = "this machineId is bound to another key";

export interface AdmissionOptions {
  authTimeoutMs: number;
  /** The frame limit of the daemon socket server, announced to child relays in `authenticated`. */
  maxFrameBytes?: number;
  /** Sockets awaiting authenticate at once. */
  maxUnauthenticated: number;
  /** Of them, from one source address (address-key.ts); absent: no such limit. */
  maxUnauthenticatedPerAddress?: number;
  /** Constant-time check of a daemon's apiKey. */
  acceptKey(key: string): boolean;
  newId(): string;
}

/** What releasing a binding did: whether its daemon was disconnected, or that there was none. */
export type Release = Result<{ disconnected: boolean }, "no binding">;

type AuthenticateFrame = Extract<DaemonFrame, { kind: "authenticate" }>;

export class DaemonAdmission {
  private readonly bindings: MachineBindings;
  private readonly repeated: RepeatedEvents;
  /** The keys accepted now (replaceKeys changes them). */
  private acceptKey: (key: string) => boolean;

  constructor(
    private readonly opts: AdmissionOptions,
    private readonly stores: Pick<Stores, "afterCommit" | "bindings" | "meta">,
    private readonly registry: DaemonRegistry,
    private readonly clock: Clock,
    private readonly log: EventLog,
    private readonly admitted: (daemon: Daemon) => void,
  ) {
    this.bindings = new MachineBindings(stores.bindings, stores.meta, clock);
    this.repeated = new RepeatedEvents(clock, log);
    this.acceptKey = opts.acceptKey;
  }

  /**
   * The accepted keys are now `keys` (a reload). A daemon that authenticated
   * with a key no longer among them is closed with 4401 (its tasks take the
   * "daemon gone" path: they wait out the grace period for it to come back
   * with an accepted key), and its machineId's binding is released. Returns
   * the machineIds whose key was revoked.
   */
  replaceKeys(keys: readonly string[]): string[] {
    this.acceptKey = createKeyCheck(keys);
    const revoked = this.bindings.releaseAllBut(keys);
    for (const machineId of revoked) {
      const daemon = this.registry.byMachineId(machineId);
      this.log.connection(
        "key_revoked",
        `The key machineId ${machineId} authenticated with is no longer accepted; its binding is released${daemon ? " and its daemon disconnected (4401)" : ""}`,
        "warn",
        { security: true },
      );
      if (daemon) {
        this.stores.afterCommit(() =>
          daemon.conn.close(CloseCode.unauthenticated, "key no longer accepted"),
        );
      }
    }
    return revoked;
  }

  /**
   * Why a new socket from `remoteAddress` is refused (HTTP 503), or null. The
   * per-address limit is checked first, so that one address never takes the
   * whole of the global cap.
   */
  refusal(remoteAddress?: string): string | null {
    const perAddress = this.opts.maxUnauthenticatedPerAddress;
    if (
      remoteAddress !== undefined &&
      perAddress !== undefined &&
      this.registry.unauthenticatedFrom(remoteAddress) >= perAddress
    )
      return `too many connections awaiting authentication from this address (limit: ${perAddress} per address); retry later`;
    if (this.registry.unauthenticatedCount >= this.opts.maxUnauthenticated)
      return "too many connections awaiting authentication; retry later";
    return null;
  }

  private underPressure(remoteAddress: string): boolean {
    const perAddress = this.opts.maxUnauthenticatedPerAddress;
    return (
      this.registry.unauthenticatedCount >= this.opts.maxUnauthenticated / 4 ||
      (perAddress !== undefined &&
        this.registry.unauthenticatedFrom(remoteAddress) >= perAddress / 4)
    );
  }

  /** A new socket: it has until the auth timeout to authenticate (less under pressure). */
  opened(conn: DaemonConnection): void {
    const pressed = this.underPressure(conn.remoteAddress);
    const wait = pressed
      ? Math.min(this.opts.authTimeoutMs, PRESSED_FIRST_FRAME_MS)
      : this.opts.authTimeoutMs;
    const timer = this.clock.setTimeout(() => {
      if (this.registry.takeUnauthenticated(conn.id) === undefined) return;
      this.reject(
        conn,
        "unauthorized",
        pressed && wait < this.opts.authTimeoutMs
          ? `no frame within ${wait} ms (many sockets are awaiting authentication)`
          : "no authenticate frame within the auth timeout",
      );
    }, wait);
    this.registry.addUnauthenticated(conn, this.clock.now(), timer);
  }

  /** The first frame of a socket not yet authenticated. */
  firstFrame(conn: DaemonConnection, text: string): void {
    const timer = this.registry.takeUnauthenticated(conn.id);
    if (timer === undefined) return; // already rejected, closing
    this.clock.clearTimeout(timer);
    if (text.length > MAX_FIRST_FRAME_CHARS) {
      // Before any parse: a stranger's frame costs a length check, nothing more.
      this.reject(
        conn,
        "badMessage",
        `the first frame must be authenticate, at most ${MAX_FIRST_FRAME_CHARS} characters; this one has ${text.length}`,
      );
      return;
    }
    const parsed = parseDaemonFrame(text);
    if (!parsed.ok) {
      this.reject(conn, "badMessage", parsed.error.message);
    } else if (parsed.value.kind !== "authenticate") {
      this.reject(conn, "badMessage", "the first frame must be authenticate");
    } else if (!this.acceptKey(parsed.value.apiKey)) {
      this.reject(conn, "unauthorized", "invalid API key");
    } else if (this.bindings.claim(parsed.value.machineId, parsed.value.apiKey) === "other") {
      this.refuseTakeover(conn, parsed.value.machineId);
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
    this.refuse(conn, code, message);
    const from = conn.remoteAddress;
    this.repeated.note({
      event: "auth_failed",
      source: from,
      level: "warn",
      details: (n) =>
        n === 1
          ? `Daemon from ${from} rejected: ${message}`
          : `Daemon from ${from} rejected ${n} times in the last minute (latest: ${message})`,
    });
  }

  private refuse(conn: DaemonConnection, code: "badMessage" | "unauthorized", message: string) {
    this.closed(conn);
    this.stores.afterCommit(() => {
      conn.send(encodeError(code, message));
      conn.close(
        CloseCode.unauthenticated,
        code === "unauthorized" ? "unauthorized" : "bad authenticate",
      );
    });
  }

  /** A valid key, but not the one this machineId belongs to: a security event. */
  private refuseTakeover(conn: DaemonConnection, machineId: string): void {
    this.refuse(conn, "unauthorized", TAKEOVER_REFUSED);
    const from = conn.remoteAddress;
    this.repeated.note({
      event: "machine_takeover_refused",
      source: `${from} ${machineId}`,
      level: "warn",
      security: true,
      details: (n) =>
        `Daemon from ${from} refused${n === 1 ? "" : ` ${n} times in the last minute`}: machineId ${machineId} is bound to another key`,
    });
  }

  /**
   * An operator releases a machineId's binding: the next key to authenticate
   * with it takes it. A connected daemon stays connected unless `disconnect`
   * (then it is closed with 4401 and its tasks wait out the grace period).
   */
  release(machineId: string, disconnect: boolean): Release {
    if (!this.bindings.release(machineId)) return err("no binding");
    const daemon = this.registry.byMachineId(machineId);
    const close = disconnect && daemon !== undefined;
    this.log.connection(
      "binding_released",
      `The binding of machineId ${machineId} to its key was released by an operator${
        daemon === undefined
          ? ""
          : close
            ? "; its daemon is disconnected"
            : "; its daemon stays connected"
      }`,
      "warn",
      { security: true },
    );
    if (close) {
      this.stores.afterCommit(() =>
        daemon.conn.close(CloseCode.unauthenticated, "machineId binding released"),
      );
    }
    return ok({ disconnected: close });
  }

  private admit(conn: DaemonConnection, auth: AuthenticateFrame): void {
    const relay = auth.role === "relay";
    // It takes over its machine's tasks; an older connection of the machine is retired
    // first, so that its close handler (run synchronously by close) leaves them alone.
    const { daemon, replaced: previous } = this.registry.add({
      conn,
      daemonId: this.opts.newId(),
      machineId: auth.machineId,
      hostname: auth.hostname,
      role: relay ? "relay" : "daemon",
      capacity: auth.capacity,
      connectedAt: this.clock.now(),
    });
    // A child relay learns our frame limit, so that it never sends a frame we would refuse.
    const limit = relay ? this.opts.maxFrameBytes : undefined;
    this.stores.afterCommit(() => conn.send(encodeAuthenticated(daemon.daemonId, limit)));
    this.log.connection(
      "downstream_connect",
      `Daemon ${auth.hostname} (${auth.machineId}) authenticated as ${daemon.daemonId}, capacity ${auth.capacity}`,
    );
    if (previous) {
      this.log.connection(
        "daemon_replaced",
        `Daemon ${previous.daemonId} replaced by ${daemon.daemonId} (same machineId ${auth.machineId}, same key), from ${conn.remoteAddress}`,
        "info",
        { security: true },
      );
      previous.conn.close(CloseCode.replaced, "replaced by a newer connection");
    }
    this.admitted(daemon);
  }
}
