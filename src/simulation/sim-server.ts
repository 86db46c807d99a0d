/**
 * The simulated Makima server at the other end of the relay's upstream link.
 * It answers the handshake, spawns tasks (new ones, re-spawns of ended ones,
 * duplicates of running ones), sends control commands and broadcasts, and
 * can go away (refusing connections) or hang (never answering authenticate).
 * Every spawnTask carries a unique `spawnId` and every command a `cmdId`.
 * What it receives it hands to the world, which checks it.
 */
import type { UpstreamTransport } from "../core/upstream-socket.ts";
import { SimUpstreamSocket, type UpstreamPeer } from "./fake-sockets.ts";
import type { Prng } from "./prng.ts";

export interface ServerHooks {
  spawnSent(taskId: string, spawnId: number): void;
  /** A frame from the relay other than its handshake and heartbeats. */
  received(text: string): void;
  trace(event: string): void;
}

export const COMMANDS = ["pauseTask", "resumeTask", "sendMessage", "interruptTask"] as const;

export class SimServer implements UpstreamPeer {
  /** Accepting connections. */
  up = true;
  /** Accepts connections but never answers authenticate (the link's connect timeout). */
  silent = false;
  socket: SimUpstreamSocket | null = null;
  /** Every socket of the live relay process that may still have events for its link. */
  sockets: SimUpstreamSocket[] = [];
  /** The socket on which it sent `authenticated`: it talks to the relay there. */
  private live: SimUpstreamSocket | null = null;
  private nextSpawnId = 1;
  private nextCmdId = 1;
  private nextTask = 1;
  /** Tasks it spawned and has no outcome for yet (its view). */
  readonly open = new Set<string>();
  /** Tasks it heard an outcome for: candidates for a re-spawn. */
  readonly ended = new Set<string>();

  constructor(
    private readonly prng: Prng,
    private readonly hooks: ServerHooks,
  ) {}

  readonly transport: UpstreamTransport = (_url, handlers) => {
    const socket = new SimUpstreamSocket(handlers, this, this.prng);
    this.socket = socket;
    this.sockets.push(socket);
    if (this.up) socket.events.push({ kind: "open" });
    else {
      socket.closed = true;
      socket.events.push({ kind: "error", message: "ECONNREFUSED" });
      socket.events.push({ kind: "close", code: 1006, reason: "connection refused" });
    }
    return socket;
  };

  get talking(): boolean {
    return this.live !== null && !this.live.closed;
  }

  received(socket: SimUpstreamSocket, text: string): void {
    if (text.startsWith('{"type":"authenticate"')) {
      if (this.silent) return;
      socket.events.push({
        kind: "message",
        text: JSON.stringify({ type: "authenticated", daemonId: "relay-at-server" }),
      });
      this.live = socket;
      return;
    }
    if (text.startsWith('{"type":"heartbeat"')) return;
    if (text.startsWith('{"type":"taskComplete"')) {
      const taskId = (JSON.parse(text) as { taskId: string }).taskId;
      this.open.delete(taskId);
      this.ended.add(taskId);
    }
    this.hooks.received(text);
  }

  closedByRelay(socket: SimUpstreamSocket): void {
    if (this.live === socket) this.live = null;
    if (this.socket === socket) this.socket = null;
  }

  /** The relay process died: its socket is simply gone. */
  relayDied(): void {
    for (const socket of this.sockets) socket.closed = true;
    this.sockets = [];
    this.socket = null;
    this.live = null;
  }

  /** Forgets sockets that are closed and have nothing left to deliver. */
  prune(): void {
    if (this.sockets.some((s) => s.closed && s.events.length === 0))
      this.sockets = this.sockets.filter((s) => !s.closed || s.events.length > 0);
  }

  /** The server goes away: the connection breaks and new ones are refused until `recover`. */
  outage(silent: boolean): void {
    const socket = this.socket;
    if (silent) this.silent = true;
    else this.up = false;
    this.live = null;
    if (socket && !socket.closed) {
      socket.closed = true;
      socket.events.push({ kind: "close", code: 1006, reason: "server gone" });
    }
  }

  recover(): void {
    this.up = true;
    this.silent = false;
  }

  private send(text: string): boolean {
    const socket = this.live;
    if (!socket || socket.closed) return false;
    socket.events.push({ kind: "message", text });
    return true;
  }

  private spawnFrame(taskId: string): boolean {
    const spawnId = this.nextSpawnId;
    const text = `{"type":"spawnTask","taskId":"${taskId}","taskName":"job ${taskId}","spawnId":${spawnId},"payload":{"z":1.0,"a":[2e0]}}`;
    if (!this.send(text)) return false;
    this.nextSpawnId += 1;
    this.open.add(taskId);
    this.ended.delete(taskId);
    this.hooks.spawnSent(taskId, spawnId);
    this.hooks.trace(`server spawnTask ${taskId} (spawn ${spawnId})`);
    return true;
  }

  spawnNew(): void {
    this.spawnFrame(`t${this.nextTask++}`);
  }

  /** A new attempt of a task whose outcome it heard. */
  respawn(): void {
    const taskId = this.prng.pick([...this.ended]);
    if (taskId) this.spawnFrame(taskId);
  }

  /** The same task again while it runs (the relay must not run it twice). */
  duplicate(): void {
    const taskId = this.prng.pick([...this.open]);
    if (taskId) this.spawnFrame(taskId);
  }

  command(type: (typeof COMMANDS)[number], anyTask: boolean): void {
    const pool = anyTask ? [...this.open, ...this.ended] : [...this.open];
    const taskId = this.prng.pick(pool);
    if (!taskId) return;
    const cmdId = this.nextCmdId;
    if (!this.send(`{"type":"${type}","taskId":"${taskId}","cmdId":${cmdId}}`)) return;
    this.nextCmdId += 1;
    this.hooks.trace(`server ${type} ${taskId} (cmd ${cmdId})`);
  }

  /** A frame for every daemon (the relay broadcasts types it does not route). */
  broadcast(): void {
    this.send(`{"type":"serverNotice","at":${this.nextCmdId}}`);
  }

  /** Writes go into a buffer that is full: sends report backpressure until `drain`. */
  congest(): void {
    if (this.socket && !this.socket.closed) this.socket.backpressured = true;
  }

  drain(): void {
    const socket = this.socket;
    if (!socket?.backpressured) return;
    socket.backpressured = false;
    if (!socket.closed) socket.handlers.onDrain();
  }
}
