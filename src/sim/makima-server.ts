/**
 * A simulated Makima server: the relay's upstream in integration tests, the
 * demo and the benchmark. It speaks raw JSON over a real WebSocket and shares
 * no code with the relay, so it checks the wire contract rather than echoing
 * the relay's own assumptions. Every frame is kept as its exact text so tests
 * can assert byte-identical forwarding.
 */
import type { Server, ServerWebSocket } from "bun";
import { type SpawningOptions, startSpawner } from "./spawner.ts";
import {
  DEFAULT_WAIT_MS,
  frameText,
  type Json,
  nowMs,
  type Predicate,
  Recorder,
  tryParse,
} from "./wait.ts";

export type { SpawningOptions };

export interface SimServerOptions {
  port?: number;
  hostname?: string;
  /** Keys accepted in `authenticate`; when absent every key is accepted. */
  apiKeys?: string[];
  /** PEM text; switches the URLs to wss:// and https://. */
  tls?: { cert: string; key: string };
}

/** A frame the sim server received from a relay or daemon, in arrival order. */
export interface ReceivedByServer {
  /** Arrival number from 0; it keeps counting across `clearReceived()`. */
  seq: number;
  connId: string;
  raw: string;
  /** The parsed frame, `undefined` when it is not JSON. */
  msg: Json;
  at: number;
  binary: boolean;
}

export interface SimConnection {
  connId: string;
  daemonId: string;
  machineId: string;
  hostname: string;
  maxConcurrentTasks: number;
  /** `"relay"` when the client declared it, otherwise `"daemon"`. */
  role: string;
  apiKey: string;
  authenticatedAt: number;
  open: boolean;
}

export interface ConnectionClose {
  connId: string;
  code: number;
  reason: string;
  /** Undefined when the connection closed before authenticating. */
  connection: SimConnection | undefined;
}

interface ConnData {
  connId: string;
}

const WS_PATH = "/ws/daemon";

export class SimServer {
  port: number;

  readonly #opts: SimServerOptions;
  readonly #frames = new Recorder<ReceivedByServer>("frames received by the sim server", (f) => {
    return `${f.connId}: ${f.raw}`;
  });
  readonly #authLog = new Recorder<SimConnection>("sim server connections", JSON.stringify);
  readonly #closes = new Recorder<ConnectionClose>("sim server closes", JSON.stringify);
  #server: Server<ConnData> | undefined;
  readonly #sockets = new Map<string, ServerWebSocket<ConnData>>();
  /** Authenticated and still open, in authentication order. */
  readonly #byConn = new Map<string, SimConnection>();
  #nextConn = 1;
  #seq = 0;
  #nextTask = 1;
  #stopSpawner: (() => void) | undefined;
  #readingPaused = false;

  constructor(opts: SimServerOptions) {
    this.#opts = opts;
    this.port = opts.port ?? 0;
  }

  /** Every frame received, on every connection, in arrival order. */
  get received(): readonly ReceivedByServer[] {
    return this.#frames.items;
  }

  /** Every connection that authenticated, including closed ones. */
  get connectionHistory(): readonly SimConnection[] {
    return this.#authLog.items;
  }

  /** Calls `listener` on each frame from now on (benchmarks); returns the unsubscribe. */
  onFrame(listener: (frame: ReceivedByServer) => void): () => void {
    return this.#frames.subscribe(listener);
  }

  /** Forgets received frames, so long benchmark runs stay flat in memory. */
  clearReceived(): void {
    this.#frames.clear();
  }

  get url(): string {
    return `${this.#opts.tls ? "wss" : "ws"}://${this.#host}:${this.port}`;
  }

  get httpUrl(): string {
    return `${this.#opts.tls ? "https" : "http"}://${this.#host}:${this.port}`;
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  /** The authenticated connections that are still open, oldest first. */
  get connections(): SimConnection[] {
    return [...this.#byConn.values()];
  }

  get #host(): string {
    const host = this.#opts.hostname ?? "127.0.0.1";
    return host.includes(":") ? `[${host}]` : host;
  }

  /** Listens (again) on `port`; the first call picks a free one when it is 0. */
  restart(): void {
    if (this.#server) throw new Error("sim server is already listening");
    this.#server = Bun.serve<ConnData>({
      port: this.port,
      hostname: this.#opts.hostname ?? "127.0.0.1",
      // A second listener on our port must fail loudly, not split traffic.
      reusePort: false,
      ...(this.#opts.tls ? { tls: this.#opts.tls } : {}),
      fetch: (req, server) => {
        if (new URL(req.url).pathname !== WS_PATH)
          return new Response("not found", { status: 404 });
        const connId = `conn-${this.#nextConn++}`;
        if (server.upgrade(req, { data: { connId } })) return undefined;
        return new Response("expected a WebSocket upgrade", { status: 426 });
      },
      websocket: {
        open: (ws) => {
          this.#sockets.set(ws.data.connId, ws);
          if (this.#readingPaused) ws.pause();
        },
        message: (ws, data) => this.#onMessage(ws, data),
        close: (ws, code, reason) => this.#onClose(ws.data.connId, code, reason),
      },
    });
    this.port = this.#server.port ?? this.port;
  }

  /** Closes every socket (1001) and releases the port; `restart()` listens again. */
  async stop(): Promise<void> {
    this.stopSpawning();
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    this.disconnectAll(1001, "sim server stopping");
    await server.stop(true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Closes the client sockets; the server keeps listening. */
  disconnectAll(code = 1000, reason = "sim server disconnect"): void {
    // Snapshot: close() runs our close handler synchronously, which edits the map.
    for (const ws of [...this.#sockets.values()]) ws.close(code, reason);
  }

  /**
   * A slow or stuck server: stops reading every connection (new ones too), so
   * TCP pushes back on the senders; `resumeReading()` reads again. Frames
   * already read may still be logged after the call.
   */
  pauseReading(): void {
    this.#readingPaused = true;
    for (const ws of this.#sockets.values()) ws.pause();
  }

  resumeReading(): void {
    this.#readingPaused = false;
    for (const ws of this.#sockets.values()) ws.resume();
  }

  get readingPaused(): boolean {
    return this.#readingPaused;
  }

  /** Sends one frame as is; returns its text. Throws if Bun dropped it. */
  send(frame: string | object, connId?: string): string {
    const raw = typeof frame === "string" ? frame : JSON.stringify(frame);
    const target = connId ?? this.connections.at(-1)?.connId;
    const ws = target === undefined ? undefined : this.#sockets.get(target);
    if (!ws) throw new Error(`sim server: no open connection ${target ?? "(none authenticated)"}`);
    // -1 (queued under backpressure) still arrives; 0 means it never will.
    if (ws.send(raw) === 0) throw new Error(`sim server: frame to ${target} was dropped`);
    return raw;
  }

  spawnTask(
    taskId: string,
    taskName = `sim ${taskId}`,
    extra: object = {},
    connId?: string,
  ): string {
    return this.send({ type: "spawnTask", taskId, taskName, ...extra }, connId);
  }

  pauseTask(taskId: string, connId?: string): string {
    return this.send({ type: "pauseTask", taskId }, connId);
  }

  resumeTask(taskId: string, connId?: string): string {
    return this.send({ type: "resumeTask", taskId }, connId);
  }

  interruptTask(taskId: string, connId?: string): string {
    return this.send({ type: "interruptTask", taskId }, connId);
  }

  sendMessage(taskId: string, message: string, connId?: string): string {
    return this.send({ type: "sendMessage", taskId, message }, connId);
  }

  waitFor(
    predicate: Predicate<ReceivedByServer>,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<ReceivedByServer> {
    return this.#frames.waitFor(predicate, timeoutMs);
  }

  /** Ignores frames received before the call. */
  waitForNext(
    predicate: Predicate<ReceivedByServer>,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<ReceivedByServer> {
    return this.#frames.waitForNext(predicate, timeoutMs);
  }

  /** An open authenticated connection matching `predicate`, now or later. */
  waitForConnection(
    timeoutMs = DEFAULT_WAIT_MS,
    predicate: Predicate<SimConnection> = () => true,
  ): Promise<SimConnection> {
    return this.#authLog.waitFor((c) => c.open && predicate(c), timeoutMs);
  }

  waitForClose(
    predicate: Predicate<ConnectionClose> = () => true,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<ConnectionClose> {
    return this.#closes.waitFor(predicate, timeoutMs);
  }

  framesOfType(type: string): ReceivedByServer[] {
    return this.#frames.items.filter((f) => f.msg?.type === type);
  }

  /** Spawns `task-<n>` at a steady rate on the newest connection. */
  startSpawning(opts: SpawningOptions): void {
    this.stopSpawning();
    this.#stopSpawner = startSpawner(this, opts, () => `task-${this.#nextTask++}`);
  }

  stopSpawning(): void {
    this.#stopSpawner?.();
    this.#stopSpawner = undefined;
  }

  #onMessage(ws: ServerWebSocket<ConnData>, data: string | Buffer): void {
    const raw = frameText(data);
    const msg = tryParse(raw) as Json;
    const { connId } = ws.data;
    this.#frames.push({
      seq: this.#seq++,
      connId,
      raw,
      msg,
      at: nowMs(),
      binary: typeof data !== "string",
    });
    const conn = this.#byConn.get(connId);
    if (conn) {
      if (msg?.type === "authenticate") this.#error(ws, "badMessage", "already authenticated");
      return;
    }
    this.#authenticate(ws, msg);
  }

  #authenticate(ws: ServerWebSocket<ConnData>, msg: Json): void {
    if (!isAuthenticate(msg)) {
      this.#error(ws, "badMessage", "the first frame must be a valid authenticate");
      ws.close(4401, "not authenticated");
      return;
    }
    const keys = this.#opts.apiKeys;
    if (keys && !keys.includes(msg.apiKey)) {
      this.#error(ws, "unauthorized", "invalid API key");
      ws.close(4401, "unauthorized");
      return;
    }
    const conn: SimConnection = {
      connId: ws.data.connId,
      daemonId: crypto.randomUUID(),
      machineId: msg.machineId,
      hostname: msg.hostname,
      maxConcurrentTasks: msg.maxConcurrentTasks,
      role: msg.role === "relay" ? "relay" : "daemon",
      apiKey: msg.apiKey,
      authenticatedAt: nowMs(),
      open: true,
    };
    this.#byConn.set(conn.connId, conn);
    ws.send(JSON.stringify({ type: "authenticated", daemonId: conn.daemonId }));
    this.#authLog.push(conn);
  }

  #error(ws: ServerWebSocket<ConnData>, code: string, message: string): void {
    ws.send(JSON.stringify({ type: "error", code, message }));
  }

  #onClose(connId: string, code: number, reason: string): void {
    this.#sockets.delete(connId);
    const connection = this.#byConn.get(connId);
    if (connection) connection.open = false;
    // #byConn holds open connections only; `connectionHistory` keeps the rest.
    this.#byConn.delete(connId);
    this.#closes.push({ connId, code, reason, connection });
  }
}

function isAuthenticate(msg: Json): boolean {
  return (
    typeof msg === "object" &&
    msg !== null &&
    msg.type === "authenticate" &&
    typeof msg.apiKey === "string" &&
    typeof msg.machineId === "string" &&
    typeof msg.hostname === "string" &&
    Number.isInteger(msg.maxConcurrentTasks) &&
    msg.maxConcurrentTasks >= 0
  );
}

export function startSimServer(opts: SimServerOptions = {}): SimServer {
  const server = new SimServer(opts);
  server.restart();
  return server;
}
