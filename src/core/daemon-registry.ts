import { addressKey } from "./address-key.ts";
import type { TimerHandle } from "./clock.ts";
import { DispatchHeap } from "./dispatch-heap.ts";
import type { DaemonConnection } from "./ports.ts";
import type { TokenBucket } from "./rate-limit.ts";

/** An authenticated daemon (or child relay) connection. */
export interface Daemon {
  readonly conn: DaemonConnection;
  readonly daemonId: string;
  readonly machineId: string;
  readonly hostname: string;
  readonly role: "daemon" | "relay";
  capacity: number;
  /** Tasks this connection holds (dispatched to it, not yet ended). */
  readonly tasks: Set<string>;
  readonly connectedAt: number;
  lastSeen: number;
  lastHeartbeat: number | null;
  /** Dispatch order tie-break: lower waited longer (set at auth and at each dispatch). */
  turn: number;
  /** Send returned backpressure: dispatch nothing more until the socket drains. */
  backpressured: boolean;
  /** Tasks held before this authentication, settled by the first heartbeat. */
  reconcile: Set<string> | null;
  /** Closed by the relay on purpose (replaced): its close must not touch its tasks. */
  retired: boolean;
  /** Frame rate limit; null for child relays, whose daemons are limited at the child. */
  readonly limiter: TokenBucket | null;
  /** Over its rate: its socket is not read until the bucket refills (timer). */
  throttle: { timer: TimerHandle } | null;
  /** When its last throttling ended: a new one soon after is the same episode. */
  lastThrottleEnd: number;
  /** Whether its socket is being read (see Relay.updateReading). */
  reading: boolean;
  /** When its socket was last resumed (or it authenticated): how long reading has been continuous. */
  readingSince: number;
}

interface Unauthenticated {
  conn: DaemonConnection;
  openedAt: number;
  timer: TimerHandle;
  /** Its source, as the per-address limit counts it (address-key.ts). */
  source: string;
}

/**
 * Who is connected. Every lookup is by key (connection id, machine id), so
 * no frame ever scans the set of daemons.
 */
export class DaemonRegistry {
  private readonly unauthenticated = new Map<string, Unauthenticated>();
  /** Sockets awaiting authenticate, by source; a source with none has no entry. */
  private readonly pendingBySource = new Map<string, number>();
  private readonly byConn = new Map<string, Daemon>();
  private readonly byMachine = new Map<string, Daemon>();
  private turns = 0;
  private readonly ready = new DispatchHeap();
  private capacitySum = 0;

  get unauthenticatedCount(): number {
    return this.unauthenticated.size;
  }

  /** Sockets awaiting authenticate from the source of `remoteAddress` (an IPv6 /64 counts as one). */
  unauthenticatedFrom(remoteAddress: string): number {
    return this.pendingBySource.get(addressKey(remoteAddress)) ?? 0;
  }

  get size(): number {
    return this.byConn.size;
  }

  /** Sum of the connected daemons' capacities, kept as they come and go. */
  get totalCapacity(): number {
    return this.capacitySum;
  }

  setCapacity(daemon: Daemon, capacity: number): void {
    if (this.byConn.get(daemon.conn.id) === daemon) this.capacitySum += capacity - daemon.capacity;
    daemon.capacity = capacity;
    this.changed(daemon);
  }

  /** The daemon that should get the next task (docs/protocol.md "Dispatch"), if any can. O(1). */
  pick(): Daemon | undefined {
    return this.ready.peek();
  }

  /** Call after changing a daemon's tasks, turn, backpressure or retirement. */
  changed(daemon: Daemon): void {
    if (this.byConn.get(daemon.conn.id) === daemon) this.ready.update(daemon);
    else this.ready.remove(daemon);
  }

  addUnauthenticated(conn: DaemonConnection, openedAt: number, timer: TimerHandle): void {
    this.takeUnauthenticated(conn.id);
    const source = addressKey(conn.remoteAddress);
    this.unauthenticated.set(conn.id, { conn, openedAt, timer, source });
    this.pendingBySource.set(source, (this.pendingBySource.get(source) ?? 0) + 1);
  }

  /** Removes a connection still waiting for `authenticate`; returns its timer. */
  takeUnauthenticated(connId: string): TimerHandle | undefined {
    const entry = this.unauthenticated.get(connId);
    if (!entry) return undefined;
    this.unauthenticated.delete(connId);
    const left = (this.pendingBySource.get(entry.source) ?? 1) - 1;
    if (left > 0) this.pendingBySource.set(entry.source, left);
    else this.pendingBySource.delete(entry.source);
    return entry.timer;
  }

  add(daemon: Omit<Daemon, "turn">): Daemon {
    const full: Daemon = { ...daemon, turn: this.nextTurn() };
    this.byConn.set(full.conn.id, full);
    this.capacitySum += full.capacity;
    this.ready.update(full);
    this.byMachine.set(full.machineId, full);
    return full;
  }

  nextTurn(): number {
    this.turns += 1;
    return this.turns;
  }

  get(connId: string): Daemon | undefined {
    return this.byConn.get(connId);
  }

  byMachineId(machineId: string): Daemon | undefined {
    return this.byMachine.get(machineId);
  }

  /** Idempotent: a second call for the same connection returns undefined. */
  remove(connId: string): Daemon | undefined {
    const daemon = this.byConn.get(connId);
    if (!daemon) return undefined;
    this.byConn.delete(connId);
    this.ready.remove(daemon);
    this.capacitySum -= daemon.capacity;
    if (this.byMachine.get(daemon.machineId) === daemon) this.byMachine.delete(daemon.machineId);
    return daemon;
  }

  all(): IterableIterator<Daemon> {
    return this.byConn.values();
  }

  /** A snapshot, safe to iterate while connections are closed. */
  list(): Daemon[] {
    return [...this.byConn.values()];
  }

  unauthenticatedConnections(): DaemonConnection[] {
    return [...this.unauthenticated.values()].map((u) => u.conn);
  }
}
