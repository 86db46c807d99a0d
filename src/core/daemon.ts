/**
 * What the rest of the core may see of a connected daemon (or child relay):
 * a read-only view. Every field here is an ownership or dispatch fact, and
 * DaemonRegistry (daemon-registry.ts) is their one writer; a module that
 * assigns one of them elsewhere does not compile. Facts about a connection
 * that are not about ownership live with the module that decides them, keyed
 * by the daemon: liveness and reading in DaemonLiveness (daemon-liveness.ts),
 * rate budgets in DaemonThrottle (daemon-throttle.ts), what the first
 * heartbeat settles in Reconciliation (reconciliation.ts).
 */
import type { DaemonConnection } from "./ports.ts";

/** Who a daemon is, as it authenticated: what DaemonRegistry.add is given. */
export interface DaemonIdentity {
  readonly conn: DaemonConnection;
  readonly daemonId: string;
  readonly machineId: string;
  readonly hostname: string;
  readonly role: "daemon" | "relay";
  readonly capacity: number;
  readonly connectedAt: number;
}

export interface Daemon extends DaemonIdentity {
  /** The tasks it holds: dispatched to its machine, not yet ended. */
  readonly holds: ReadonlySet<string>;
  /** Dispatch order tie-break: lower waited longer (set at auth and at each dispatch). */
  readonly turn: number;
  /** Send returned backpressure: dispatch nothing more until the socket drains. */
  readonly backpressured: boolean;
  /** Closed by the relay on purpose (replaced, or shutdown): its close must not touch its tasks. */
  readonly retired: boolean;
  /** Its machine is drained by an operator: no new task; what it holds runs on. */
  readonly draining: boolean;
}

/** Who holds a dispatched task: its machine, and that machine's connection while it has one. */
export interface Holder {
  readonly machineId: string;
  /** Undefined while the machine is away (the grace period after a disconnect, or after a restart). */
  readonly daemon: Daemon | undefined;
}

/** May `d` take a task now? */
export const canTakeTask = (d: Daemon): boolean =>
  !d.backpressured && !d.retired && !d.draining && d.holds.size < d.capacity;

/** The dispatch order of docs/protocol.md: fewer active tasks first, then the one that waited longest. */
export const dispatchesBefore = (a: Daemon, b: Daemon): boolean =>
  a.holds.size < b.holds.size || (a.holds.size === b.holds.size && a.turn < b.turn);
