/**
 * A simulated coding daemon: connects to the relay (or straight to the sim
 * server, "direct mode") with the standard `WebSocket` client, authenticates,
 * and either leaves every move to the test ("manual") or runs the tasks it is
 * given on timers ("automatic"). Like the sim server it shares no code with
 * the relay: it is a protocol peer.
 */
import { TaskRun } from "./task-run.ts";
import {
  DEFAULT_WAIT_MS,
  frameText,
  type Json,
  nowMs,
  type Predicate,
  Recorder,
  tryParse,
} from "./wait.ts";

/**
 * Bun's client takes an options object (TLS, headers) as its second argument;
 * with the DOM lib loaded, TypeScript only sees the browser constructor.
 */
const BunWebSocket = WebSocket as unknown as new (
  url: string,
  options: Bun.WebSocketOptions,
) => WebSocket;

export interface AutoBehaviour {
  /** Duration of each task, drawn per task. */
  runMs: () => number;
  outputLines: number;
  /** Share of tasks that complete with `success: false`, decided by `rng`. */
  failRate: number;
  rng?: () => number;
}

export interface SimDaemonOptions {
  /** Server or relay URL; `/ws/daemon` is appended when missing. */
  url: string;
  apiKey: string;
  machineId?: string;
  hostname?: string;
  maxConcurrentTasks?: number;
  /** Send `authenticate` on open (default true). */
  autoAuthenticate?: boolean;
  /** Extra `authenticate` fields, e.g. `{ role: "relay" }`. */
  authExtra?: Record<string, unknown>;
  behaviour?: "manual" | AutoBehaviour;
  /** Heartbeat period once authenticated; 0 (default) sends none. */
  heartbeatMs?: number;
  connectTimeoutMs?: number;
  /** Client TLS settings for wss://, e.g. a test CA or `rejectUnauthorized: false`. */
  tls?: { ca?: string; rejectUnauthorized?: boolean };
}

/** A frame this sim daemon received from the relay (or server), in arrival order. */
export interface ReceivedByDaemon {
  seq: number;
  raw: string;
  msg: Json;
  at: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export class SimDaemon {
  readonly socket: WebSocket;
  readonly machineId: string;
  readonly hostname: string;
  readonly maxConcurrentTasks: number;
  /** Tasks received through `spawnTask` and not completed yet. */
  readonly activeTasks = new Set<string>();
  /** Resolves with the daemonId; rejects if the socket closes first. */
  readonly authenticated: Promise<string>;
  daemonId: string | undefined;

  readonly #opts: SimDaemonOptions;
  readonly #frames = new Recorder<ReceivedByDaemon>(
    "frames received by a sim daemon",
    (f) => f.raw,
  );
  readonly #closes = new Recorder<CloseInfo>("sim daemon close", JSON.stringify);
  readonly #runs = new Map<string, TaskRun>();
  readonly #auth = Promise.withResolvers<string>();
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #seq = 0;

  constructor(opts: SimDaemonOptions) {
    this.#opts = opts;
    this.machineId = opts.machineId ?? `sim-${crypto.randomUUID().slice(0, 8)}`;
    this.hostname = opts.hostname ?? `${this.machineId}.sim`;
    this.maxConcurrentTasks = opts.maxConcurrentTasks ?? 4;
    this.authenticated = this.#auth.promise;
    // Tests that expect a refusal never await this; it must not count as unhandled.
    this.authenticated.catch(() => {});
    this.socket = new BunWebSocket(daemonUrl(opts.url), opts.tls ? { tls: opts.tls } : {});
    this.socket.binaryType = "arraybuffer";
    this.socket.addEventListener("open", () => {
      if (opts.autoAuthenticate ?? true) this.authenticate();
    });
    this.socket.addEventListener("message", (ev) => this.#onMessage(ev.data));
    this.socket.addEventListener("close", (ev) => this.#onClose(ev.code, ev.reason));
  }

  get received(): readonly ReceivedByDaemon[] {
    return this.#frames.items;
  }

  get closed(): CloseInfo | undefined {
    return this.#closes.items[0];
  }

  get #auto(): AutoBehaviour | undefined {
    const b = this.#opts.behaviour;
    return b === undefined || b === "manual" ? undefined : b;
  }

  /** Sends the `authenticate` frame (done on open unless `autoAuthenticate: false`). */
  authenticate(extra: Record<string, unknown> = {}): string {
    return this.send({
      type: "authenticate",
      apiKey: this.#opts.apiKey,
      machineId: this.machineId,
      hostname: this.hostname,
      maxConcurrentTasks: this.maxConcurrentTasks,
      ...this.#opts.authExtra,
      ...extra,
    });
  }

  /** Sends one text frame; returns its text. Throws when the socket is not open. */
  send(frame: string | object): string {
    const raw = typeof frame === "string" ? frame : JSON.stringify(frame);
    this.sendRaw(raw);
    return raw;
  }

  /** Sends exactly these bytes; a Uint8Array goes as a binary frame. */
  sendRaw(data: string | Uint8Array): void {
    if (this.socket.readyState !== WebSocket.OPEN) {
      throw new Error(`sim daemon ${this.machineId}: socket is not open`);
    }
    this.socket.send(data);
  }

  /**
   * Sends every frame back to back in one turn (a burst: a long build log
   * printed at once); returns their texts in order.
   */
  sendAll(frames: readonly (string | object)[]): string[] {
    return frames.map((frame) => this.send(frame));
  }

  /** Bytes the client has queued but not yet written to TCP (the relay not reading shows here). */
  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  /**
   * Forgets a task without completing it, as a daemon that crashed and
   * restarted would: nothing is sent, and later heartbeats no longer list it.
   */
  forget(taskId: string): void {
    this.#runs.get(taskId)?.cancel();
    this.#runs.delete(taskId);
    this.activeTasks.delete(taskId);
  }

  heartbeat(activeTasks: string[] = [...this.activeTasks]): string {
    return this.send({ type: "heartbeat", activeTasks });
  }

  taskOutput(taskId: string, output: string): string {
    return this.send({ type: "taskOutput", taskId, output });
  }

  complete(taskId: string, success = true, error?: string): string {
    this.#runs.get(taskId)?.cancel();
    this.#runs.delete(taskId);
    this.activeTasks.delete(taskId);
    return this.send({
      type: "taskComplete",
      taskId,
      success,
      ...(error === undefined ? {} : { error }),
    });
  }

  statusChange(taskId: string, oldStatus: string, newStatus: string): string {
    return this.send({ type: "taskStatusChange", taskId, oldStatus, newStatus });
  }

  waitFor(
    predicate: Predicate<ReceivedByDaemon>,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<ReceivedByDaemon> {
    return this.#frames.waitFor(predicate, timeoutMs);
  }

  /** Ignores frames received before the call. */
  waitForNext(
    predicate: Predicate<ReceivedByDaemon>,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<ReceivedByDaemon> {
    return this.#frames.waitForNext(predicate, timeoutMs);
  }

  framesOfType(type: string): ReceivedByDaemon[] {
    return this.#frames.items.filter((f) => f.msg?.type === type);
  }

  /** Resolves with the close code and reason, at once if already closed. */
  waitForClose(timeoutMs = DEFAULT_WAIT_MS): Promise<CloseInfo> {
    return this.#closes.waitFor(() => true, timeoutMs);
  }

  /** Closes the socket and waits for the close handshake to finish. */
  close(
    code = 1000,
    reason = "sim daemon closing",
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<CloseInfo> {
    if (!this.closed) this.socket.close(code, reason);
    return this.waitForClose(timeoutMs);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #onMessage(data: string | ArrayBuffer): void {
    const raw = frameText(data);
    const msg = tryParse(raw) as Json;
    if (msg?.type === "authenticated" && typeof msg.daemonId === "string" && !this.daemonId) {
      this.daemonId = msg.daemonId;
      this.#startHeartbeats();
      this.#auth.resolve(msg.daemonId);
    }
    if (typeof msg?.taskId === "string") this.#onTaskCommand(msg.type, msg.taskId);
    // Logged last, so a test woken by this frame already sees its effects.
    this.#frames.push({ seq: this.#seq++, raw, msg, at: nowMs() });
  }

  #onTaskCommand(type: unknown, taskId: string): void {
    const run = this.#runs.get(taskId);
    switch (type) {
      case "spawnTask":
        // A duplicate spawn of a running task must not run it twice.
        if (this.activeTasks.has(taskId)) return;
        this.activeTasks.add(taskId);
        this.#startRun(taskId);
        return;
      case "pauseTask":
        run?.pause();
        return;
      case "resumeTask":
        run?.resume();
        return;
      case "interruptTask":
        if (run) this.complete(taskId, false, "interrupted");
        return;
    }
  }

  #startRun(taskId: string): void {
    const auto = this.#auto;
    if (!auto) return;
    const rng = auto.rng ?? Math.random;
    const run = new TaskRun(taskId, auto.runMs(), auto.outputLines, {
      output: (line) => this.#sendIfOpen(() => this.taskOutput(taskId, line)),
      finish: () => {
        const success = rng() >= auto.failRate;
        this.#sendIfOpen(() =>
          this.complete(taskId, success, success ? undefined : "simulated failure"),
        );
      },
    });
    this.#runs.set(taskId, run);
    run.start();
  }

  /** Timer-driven sends race the close event; a closing socket just ends the run. */
  #sendIfOpen(send: () => void): void {
    if (this.socket.readyState === WebSocket.OPEN) send();
  }

  #startHeartbeats(): void {
    const period = this.#opts.heartbeatMs ?? 0;
    if (period <= 0) return;
    this.#heartbeatTimer = setInterval(() => this.#sendIfOpen(() => this.heartbeat()), period);
  }

  #onClose(code: number, reason: string): void {
    clearInterval(this.#heartbeatTimer);
    for (const run of this.#runs.values()) run.cancel();
    this.#runs.clear();
    this.#auth.reject(
      new Error(`sim daemon ${this.machineId}: closed (${code} ${reason}) before authenticated`),
    );
    this.#closes.push({ code, reason });
  }
}

/** Mirrors the contract's URL rule: ws(s) scheme, path ending in /ws/daemon. */
export function daemonUrl(url: string): string {
  const ws = url.replace(/^http(s?):\/\//, "ws$1://");
  return ws.endsWith("/ws/daemon") ? ws : `${ws.replace(/\/$/, "")}/ws/daemon`;
}

/**
 * Connects and resolves once the socket is open (the `authenticate` frame is
 * then already sent unless `autoAuthenticate` is false); await `authenticated`
 * for the handshake. Rejects if the connection fails or times out.
 */
export async function connectSimDaemon(opts: SimDaemonOptions): Promise<SimDaemon> {
  const daemon = new SimDaemon(opts);
  const { promise, resolve, reject } = Promise.withResolvers<SimDaemon>();
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_WAIT_MS;
  const timer = setTimeout(() => {
    daemon.socket.close();
    reject(new Error(`sim daemon: no connection to ${daemonUrl(opts.url)} within ${timeoutMs} ms`));
  }, timeoutMs);
  const onOpen = () => resolve(daemon);
  const onClose = (ev: CloseEvent) => {
    reject(
      new Error(
        `sim daemon: connection to ${daemonUrl(opts.url)} failed (${ev.code} ${ev.reason})`,
      ),
    );
  };
  daemon.socket.addEventListener("open", onOpen);
  daemon.socket.addEventListener("close", onClose);
  try {
    return await promise;
  } finally {
    clearTimeout(timer);
    daemon.socket.removeEventListener("open", onOpen);
    daemon.socket.removeEventListener("close", onClose);
  }
}
