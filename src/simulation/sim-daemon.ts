/**
 * A simulated Makima daemon: one machineId, a process that outlives its
 * connections (a network blip keeps its tasks, a restart forgets them), and
 * the frames it writes, each tagged with a unique `sim` id and a sequence
 * number `n` so that the server side can tell every frame apart and check
 * its order. It only writes into its socket; the world decides when the
 * relay reads.
 */
import { DAEMON_KEY } from "./core.ts";
import type { SimDaemonConn } from "./fake-sockets.ts";
import type { FrameMeta } from "./ledger.ts";
import { tagOf } from "./model.ts";

export interface Run {
  readonly spawnId: number;
  /** The daemon lost track of it: never listed again, never completed. */
  forgotten: boolean;
}

export interface DaemonEnv {
  now(): number;
  /** Opens a socket to the relay; null when the relay refuses the upgrade (503). */
  open(daemon: SimDaemon): SimDaemonConn | null;
  /** The daemon's side drops the connection (process killed, network gone). */
  drop(conn: SimDaemonConn): void;
  written(meta: FrameMeta): void;
  trace(event: string): void;
}

export const HEARTBEAT_EVERY_MS = 1000;

export class SimDaemon {
  conn: SimDaemonConn | null = null;
  /** Earlier connections whose received frames the daemon has not processed yet. */
  private old: SimDaemonConn[] = [];
  authenticated = false;
  capacity = 0;
  readonly running = new Map<string, Run>();
  nextHeartbeat = 0;
  hungUntil = 0;
  /** When it dials again after losing its connection (null: stays away for now). */
  reconnectAt: number | null = null;
  private seq = 0;

  constructor(
    readonly machineId: string,
    private readonly env: DaemonEnv,
  ) {}

  get online(): boolean {
    return this.conn !== null && this.conn.closed === null;
  }

  get hung(): boolean {
    return this.env.now() < this.hungUntil;
  }

  /** Dials the relay (replacing its own live connection, if any) and authenticates. */
  connect(capacity: number, key = DAEMON_KEY, authenticate = true): boolean {
    const conn = this.env.open(this);
    if (!conn) {
      this.env.trace(`${this.machineId} refused by the relay`);
      return false;
    }
    if (this.conn) this.old.push(this.conn);
    this.conn = conn;
    this.authenticated = false;
    this.capacity = capacity;
    this.reconnectAt = null;
    if (authenticate)
      conn.write(
        JSON.stringify({
          type: "authenticate",
          apiKey: key,
          machineId: this.machineId,
          hostname: `host-${this.machineId}`,
          maxConcurrentTasks: capacity,
        }),
      );
    return true;
  }

  /** The connection is gone from the daemon's side; a restart also forgets every task. */
  vanish(restart: boolean, dropInbox: boolean): void {
    const conn = this.conn;
    if (!conn) return;
    if (dropInbox) conn.inbox = [];
    else this.process();
    this.env.drop(conn);
    this.lost(conn);
    if (restart) this.running.clear();
  }

  /** One of its connections ended (relay close, crash, own drop). */
  lost(conn: SimDaemonConn): void {
    if (conn !== this.conn) return;
    this.old.push(conn);
    this.conn = null;
    this.authenticated = false;
  }

  /** Reads what the relay sent on every connection it still has. */
  process(): void {
    if (this.old.length > 0) {
      for (const conn of this.old) this.drain(conn);
      this.old = this.old.filter((c) => c.closed === null);
    }
    if (this.conn) this.drain(this.conn);
  }

  /** Offline for good with nothing left to read: the world can stop looking at it. */
  get done(): boolean {
    return this.conn === null && this.old.length === 0 && this.reconnectAt === null;
  }

  private drain(conn: SimDaemonConn): void {
    if (conn.inbox.length === 0) return;
    const frames = conn.inbox;
    conn.inbox = [];
    for (const text of frames) this.handle(conn, text);
  }

  private handle(conn: SimDaemonConn, text: string): void {
    const frame = JSON.parse(text) as { type: string; taskId?: string };
    const { type } = frame;
    const taskId = frame.taskId ?? "";
    if (type === "authenticated") {
      if (conn === this.conn) {
        this.authenticated = true;
        this.nextHeartbeat = this.env.now() + 1;
      }
    } else if (type === "spawnTask") {
      // A new attempt of a task it still runs replaces the old run.
      this.running.set(taskId, { spawnId: tagOf(text, "spawnId") ?? -1, forgotten: false });
    } else if (type === "interruptTask") {
      const run = this.running.get(taskId);
      if (run && !run.forgotten) this.complete(taskId, false, "interrupted");
    }
  }

  /** The tasks it would list in a heartbeat. */
  listed(): string[] {
    const ids: string[] = [];
    for (const [id, run] of this.running) if (!run.forgotten) ids.push(id);
    return ids;
  }

  heartbeat(): void {
    if (!this.online || !this.authenticated) return;
    this.process();
    this.conn?.write(JSON.stringify({ type: "heartbeat", activeTasks: this.listed() }));
  }

  capacityUpdate(capacity: number): void {
    if (!this.online) return;
    this.capacity = capacity;
    this.conn?.write(JSON.stringify({ type: "capacityUpdate", maxConcurrentTasks: capacity }));
  }

  output(taskId: string, lines = 1): void {
    for (let i = 0; i < lines; i++) this.taskFrame("taskOutput", taskId, false, { line: i });
  }

  status(taskId: string, newStatus: string): void {
    this.taskFrame("taskStatusChange", taskId, true, { oldStatus: "running", newStatus });
  }

  complete(taskId: string, success: boolean, error?: string): void {
    this.taskFrame("taskComplete", taskId, true, error ? { success, error } : { success });
    this.running.delete(taskId);
  }

  notice(): void {
    this.write("daemonNotice", null, false, {});
  }

  /** A frame that is not even JSON (the relay answers badMessage, loses nothing else). */
  garbage(): void {
    this.conn?.write("{not json");
  }

  private taskFrame(type: string, taskId: string, critical: boolean, body: object): void {
    const run = this.running.get(taskId);
    this.write(type, taskId, critical, { run: run?.spawnId ?? null, ...body });
  }

  private write(type: string, taskId: string | null, critical: boolean, body: object): void {
    const conn = this.conn;
    if (!conn || conn.closed) return;
    const n = ++this.seq;
    const sim = `${this.machineId}#${n}`;
    const frame = taskId === null ? { type, sim, n, ...body } : { type, taskId, sim, n, ...body };
    this.env.written({ sim, type, taskId, n, critical });
    conn.write(JSON.stringify(frame));
  }
}
