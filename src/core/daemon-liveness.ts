/**
 * Whether each daemon is being read, and when it was last heard: the facts
 * behind the liveness timeout (docs/protocol.md "Heartbeats") and behind the
 * reconciliation settle rule. This module is their one owner; the daemon
 * record (daemon.ts) does not carry them.
 *
 * A socket is read unless the relay says otherwise (the upstream is
 * congested, commits fail, the outbox is full of frames it may not drop) or
 * the daemon is over its budget. A daemon that is not read cannot be heard,
 * so it is never silent: its clock restarts when reading resumes.
 */
import { CloseCode } from "../protocol/messages.ts";
import type { Clock } from "./clock.ts";
import type { Daemon } from "./daemon.ts";
import type { EventLog } from "./ports.ts";

interface Liveness {
  /** When a frame was last read from it (or reading resumed). */
  lastSeen: number;
  /** When its last complete heartbeat was read. */
  lastHeartbeat: number | null;
  /** Whether its socket is being read. */
  reading: boolean;
  /** When its socket was last resumed (or it authenticated): how long reading has been continuous. */
  readingSince: number;
}

export class DaemonLiveness {
  /** By daemon record (any view of it: the HTTP layer passes a narrowed one). */
  private readonly state = new WeakMap<object, Liveness>();

  constructor(
    private readonly clock: Clock,
    /** Should `daemon` be read now? (The relay's flags and the daemon's throttle.) */
    private readonly shouldRead: (daemon: Daemon) => boolean,
  ) {}

  /** A daemon authenticated: it is being read, as of now. */
  admitted(daemon: Daemon): void {
    const now = this.clock.now();
    this.state.set(daemon, {
      lastSeen: now,
      lastHeartbeat: null,
      reading: true,
      readingSince: now,
    });
    this.update(daemon);
  }

  /** A frame was read from it. */
  heard(daemon: Daemon, now: number): void {
    const s = this.state.get(daemon);
    if (s) s.lastSeen = now;
  }

  /** Its heartbeat (the last part, if in parts) was read. */
  heartbeat(daemon: Daemon): void {
    const s = this.state.get(daemon);
    if (s) s.lastHeartbeat = this.clock.now();
  }

  /** The one place that pauses or resumes a daemon's socket; liveness restarts on resume. */
  update(daemon: Daemon): void {
    const s = this.state.get(daemon);
    if (!s) return;
    const read = this.shouldRead(daemon);
    if (read === s.reading) return;
    s.reading = read;
    if (read) {
      s.readingSince = this.clock.now();
      s.lastSeen = this.clock.now();
      daemon.conn.resume?.();
    } else daemon.conn.pause?.();
  }

  lastHeartbeat(daemon: object): number | null {
    return this.state.get(daemon)?.lastHeartbeat ?? null;
  }

  isReading(daemon: Daemon): boolean {
    return this.state.get(daemon)?.reading ?? false;
  }

  /** Has its socket been read without a pause for at least `ms`? */
  readSteadilyFor(daemon: Daemon, ms: number): boolean {
    const s = this.state.get(daemon);
    if (!s?.reading) return false;
    return this.clock.now() - s.readingSince >= ms;
  }

  /** Closes (4408) every daemon of `daemons` being read and heard nothing for `timeoutMs`. */
  closeSilent(daemons: readonly Daemon[], timeoutMs: number, log: EventLog): void {
    const deadline = this.clock.now() - timeoutMs;
    // Chosen before any is closed: a close runs the relay's close handler at once.
    const silent = daemons.filter((d) => {
      const s = this.state.get(d);
      return s?.reading === true && s.lastSeen < deadline;
    });
    for (const d of silent) {
      log.connection(
        "daemon_silent",
        `Daemon ${d.hostname} silent for over ${timeoutMs} ms`,
        "warn",
      );
      d.conn.close(CloseCode.silent, "no heartbeat within the liveness timeout");
    }
  }
}
