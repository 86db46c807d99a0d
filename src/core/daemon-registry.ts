/**
 * Who is connected, and who holds which task. DaemonRegistry is the one owner
 * of every daemon record (daemon.ts) and of every ownership transition:
 * assigning a task to a daemon, releasing it, backpressure on and off,
 * retirement, a machine going away (its tasks wait for it: the grace period)
 * and coming back, capacity, draining, the dispatch turn. Each transition keeps the
 * dispatch heap right itself, so `pick()` always names the daemon that
 * docs/protocol.md "Dispatch" says should get the next task; nothing outside
 * can change a record (the view is read-only) or forget to tell the heap.
 *
 * Ownership is per machine: a task dispatched to a machine stays with it
 * across reconnects, and its holder is that machine's connection while it has
 * one. Every lookup is by key (task, connection or machine id), so no frame
 * scans the daemons.
 */
import { addressKey } from "./address-key.ts";
import type { TimerHandle } from "./clock.ts";
import {
  canTakeTask,
  type Daemon,
  type DaemonIdentity,
  dispatchesBefore,
  type Holder,
} from "./daemon.ts";
import { DispatchHeap } from "./dispatch-heap.ts";
import type { DaemonConnection } from "./ports.ts";

const NOTHING: ReadonlySet<string> = new Set();

/** A machine that holds tasks or is connected. */
interface Machine extends Holder {
  /** The tasks dispatched to it, not yet ended. */
  readonly tasks: Set<string>;
  daemon: Entry | undefined;
}

/** The registry's own, writable, record; the rest of the core sees it as a `Daemon`. */
class Entry implements Daemon {
  readonly conn: DaemonConnection;
  readonly daemonId: string;
  readonly machineId: string;
  readonly hostname: string;
  readonly role: "daemon" | "relay";
  readonly connectedAt: number;
  capacity: number;
  backpressured = false;
  retired = false;

  constructor(
    identity: DaemonIdentity,
    readonly machine: Machine,
    public turn: number,
    /** The registry's drained machines, read at each use: a drain reaches every connection. */
    private readonly drained: ReadonlySet<string>,
  ) {
    this.conn = identity.conn;
    this.daemonId = identity.daemonId;
    this.machineId = identity.machineId;
    this.hostname = identity.hostname;
    this.role = identity.role;
    this.connectedAt = identity.connectedAt;
    this.capacity = identity.capacity;
  }

  get draining(): boolean {
    return this.drained.has(this.machineId);
  }

  /** Its machine's tasks while it is that machine's connection; nothing once replaced. */
  get holds(): ReadonlySet<string> {
    return this.machine.daemon === this ? this.machine.tasks : NOTHING;
  }
}

interface Unauthenticated {
  conn: DaemonConnection;
  openedAt: number;
  timer: TimerHandle;
  /** Its source, as the per-address limit counts it (address-key.ts). */
  source: string;
}

export class DaemonRegistry {
  private readonly unauthenticated = new Map<string, Unauthenticated>();
  /** Sockets awaiting authenticate, by source; a source with none has no entry. */
  private readonly pendingBySource = new Map<string, number>();
  private readonly byConn = new Map<string, Entry>();
  private readonly machines = new Map<string, Machine>();
  /** The one map from a dispatched task to its holder (each machine's `tasks` is its index). */
  private readonly holders = new Map<string, Machine>();
  /**
   * Machines an operator drained: their daemons get no new task. Kept by
   * machineId, connected or not, so that a drain holds across reconnects.
   */
  private readonly drained = new Set<string>();
  private turns = 0;
  private readonly ready = new DispatchHeap<Entry>(dispatchesBefore);
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

  /** The daemon that should get the next task (docs/protocol.md "Dispatch"), if any can. O(1). */
  pick(): Daemon | undefined {
    return this.ready.peek();
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

  unauthenticatedConnections(): DaemonConnection[] {
    return [...this.unauthenticated.values()].map((u) => u.conn);
  }

  // ---- connections -------------------------------------------------------

  /**
   * An authenticated daemon. It becomes its machine's connection, so it
   * holds at once whatever the machine holds (it reattaches); the machine's
   * previous connection, if any, is retired (it is being replaced) and
   * returned, for the caller to close.
   */
  add(identity: DaemonIdentity): { daemon: Daemon; replaced: Daemon | undefined } {
    const machine = this.machineOf(identity.machineId);
    const replaced = machine.daemon;
    const entry = new Entry(identity, machine, this.nextTurn(), this.drained);
    machine.daemon = entry;
    if (replaced) this.retireEntry(replaced);
    this.byConn.set(entry.conn.id, entry);
    this.capacitySum += entry.capacity;
    this.changed(entry);
    return { daemon: entry, replaced };
  }

  /**
   * A connection ended. Idempotent: a second call returns undefined. Its
   * machine keeps its tasks, with no connection, until it comes back
   * (`add`) or they are released.
   */
  remove(connId: string): Daemon | undefined {
    const entry = this.byConn.get(connId);
    if (!entry) return undefined;
    this.byConn.delete(connId);
    this.ready.remove(entry);
    this.capacitySum -= entry.capacity;
    const machine = entry.machine;
    if (machine.daemon === entry) {
      machine.daemon = undefined;
      this.forgetIfIdle(machine);
    }
    return entry;
  }

  get(connId: string): Daemon | undefined {
    return this.byConn.get(connId);
  }

  /** The machine's current connection (the newest, once an older one is replaced). */
  byMachineId(machineId: string): Daemon | undefined {
    return this.machines.get(machineId)?.daemon;
  }

  all(): IterableIterator<Daemon> {
    return this.byConn.values();
  }

  /** A snapshot, safe to iterate while connections are closed. */
  list(): Daemon[] {
    return [...this.byConn.values()];
  }

  // ---- ownership ---------------------------------------------------------

  /** Who holds `taskId`, if it is dispatched. */
  holderOf(taskId: string): Holder | undefined {
    return this.holders.get(taskId);
  }

  /** Is `taskId` dispatched to the machine `machineId` (connected or away)? O(1). */
  holds(machineId: string, taskId: string): boolean {
    return this.holders.get(taskId)?.machineId === machineId;
  }

  /** The tasks `machineId` holds, connected or away. */
  heldBy(machineId: string): ReadonlySet<string> {
    return this.machines.get(machineId)?.tasks ?? NOTHING;
  }

  /** Dispatch: `daemon` holds `taskId` now, and its turn moves to the back. */
  assign(daemon: Daemon, taskId: string): void {
    const entry = this.entry(daemon);
    if (!entry) throw new Error(`assign ${taskId} to ${daemon.conn.id}, which is not connected`);
    this.release(taskId);
    entry.machine.tasks.add(taskId);
    this.holders.set(taskId, entry.machine);
    entry.turn = this.nextTurn();
    this.changed(entry);
  }

  /** After a restart: the database says `machineId` holds `taskId`; the machine is away until it comes back. */
  restore(machineId: string, taskId: string): void {
    const machine = this.machineOf(machineId);
    machine.tasks.add(taskId);
    this.holders.set(taskId, machine);
  }

  /** The task ended (or was lost): nobody holds it. Idempotent. */
  release(taskId: string): void {
    const machine = this.holders.get(taskId);
    if (!machine) return;
    this.holders.delete(taskId);
    machine.tasks.delete(taskId);
    if (machine.daemon) this.changed(machine.daemon);
    else this.forgetIfIdle(machine);
  }

  // ---- dispatch facts ----------------------------------------------------

  setCapacity(daemon: Daemon, capacity: number): void {
    const entry = this.entry(daemon);
    if (!entry) return;
    this.capacitySum += capacity - entry.capacity;
    entry.capacity = capacity;
    this.changed(entry);
  }

  /** A send returned backpressure (`true`), or the socket drained (`false`). */
  setBackpressured(daemon: Daemon, backpressured: boolean): void {
    const entry = this.entry(daemon);
    if (!entry || entry.backpressured === backpressured) return;
    entry.backpressured = backpressured;
    this.changed(entry);
  }

  /**
   * Drains `machineId` (`on`), or returns it to rotation: a drained machine's
   * daemon gets no new task, keeps what it holds and still gets its commands.
   * It applies to the machine whether it is connected or not. False when it
   * was already so.
   */
  setDraining(machineId: string, on: boolean): boolean {
    if (this.drained.has(machineId) === on) return false;
    if (on) this.drained.add(machineId);
    else this.drained.delete(machineId);
    const entry = this.machines.get(machineId)?.daemon;
    if (entry) this.changed(entry);
    return true;
  }

  isDraining(machineId: string): boolean {
    return this.drained.has(machineId);
  }

  /** Every drained machineId, connected or not, sorted. */
  drainingMachines(): string[] {
    return [...this.drained].sort();
  }

  /** The relay closes it on purpose: it gets no more tasks, and its close leaves its tasks alone. */
  retire(daemon: Daemon): void {
    const entry = this.entry(daemon);
    if (entry) this.retireEntry(entry);
  }

  private retireEntry(entry: Entry): void {
    entry.retired = true;
    this.ready.remove(entry);
  }

  private nextTurn(): number {
    this.turns += 1;
    return this.turns;
  }

  /** The record behind a view, if it is still connected (a stale view changes nothing). */
  private entry(daemon: Daemon): Entry | undefined {
    const entry = this.byConn.get(daemon.conn.id);
    return entry === daemon ? entry : undefined;
  }

  private machineOf(machineId: string): Machine {
    let machine = this.machines.get(machineId);
    if (!machine) {
      machine = { machineId, tasks: new Set(), daemon: undefined };
      this.machines.set(machineId, machine);
    }
    return machine;
  }

  private forgetIfIdle(machine: Machine): void {
    if (machine.daemon === undefined && machine.tasks.size === 0)
      this.machines.delete(machine.machineId);
  }

  /** Puts `entry` where the dispatch order says, or out of the heap if it cannot take a task. */
  private changed(entry: Entry): void {
    if (this.byConn.get(entry.conn.id) === entry && canTakeTask(entry)) this.ready.update(entry);
    else this.ready.remove(entry);
  }
}
