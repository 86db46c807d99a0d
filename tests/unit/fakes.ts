/**
 * Test doubles for the ports in src/core/ports.ts and the upstream transport.
 * No sockets and no real timers: tests drive every event themselves.
 */

import type { Daemon, DaemonIdentity } from "../../src/core/daemon.ts";
import type {
  ConnectionLogOptions,
  DaemonConnection,
  EventLog,
  LogLevel,
  SendResult,
} from "../../src/core/ports.ts";
import type { UpstreamLinkOptions } from "../../src/core/upstream-link.ts";
import type {
  UpstreamHandlers,
  UpstreamSocket,
  UpstreamTransport,
} from "../../src/core/upstream-socket.ts";

export type Json = Record<string, unknown>;

// ---- daemons ----------------------------------------------------------------

/** Who a daemon is, as DaemonRegistry.add takes it (capacity 1), for registry and dispatch tests. */
export function fakeIdentity(id: string, over: Partial<DaemonIdentity> = {}): DaemonIdentity {
  return {
    conn: new FakeConnection(id),
    daemonId: `d-${id}`,
    machineId: `m-${id}`,
    hostname: id,
    role: "daemon",
    capacity: 1,
    connectedAt: 0,
    ...over,
  };
}

/** A plain daemon view (idle), for checks that state a rule over daemons without a registry. */
export function fakeDaemon(id: string, over: Partial<Daemon> = {}): Daemon {
  return {
    ...fakeIdentity(id),
    holds: new Set(),
    turn: 0,
    backpressured: false,
    retired: false,
    draining: false,
    ...over,
  };
}

// ---- daemon connections ----------------------------------------------------

/**
 * A daemon socket that records what the relay wrote and how it closed it.
 * Like Bun's ServerWebSocket, close() runs the close handler synchronously
 * (set `onClose` to `relay.daemonClosed`), and a closed socket drops sends.
 */
export class FakeConnection implements DaemonConnection {
  readonly sent: string[] = [];
  closed: { code: number; reason: string } | null = null;
  /** Results of the next sends, in order; afterwards `defaultResult`. */
  readonly results: SendResult[] = [];
  defaultResult: SendResult = "sent";
  onClose: ((code: number, reason: string) => void) | null = null;

  constructor(
    readonly id: string,
    readonly remoteAddress = "10.0.0.1",
  ) {}

  send(text: string): SendResult {
    if (this.closed) return "dropped";
    const result = this.results.shift() ?? this.defaultResult;
    if (result !== "dropped") this.sent.push(text);
    return result;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    this.onClose?.(code, reason);
  }

  /** Every frame written so far, parsed. */
  frames(): Json[] {
    return this.sent.map((s) => JSON.parse(s) as Json);
  }

  types(): string[] {
    return this.frames().map((f) => f.type as string);
  }

  /** Forgets what was sent so far (to assert on what comes next). */
  clear(): void {
    this.sent.length = 0;
  }
}

// ---- upstream transport ----------------------------------------------------

/**
 * One upstream socket. Its methods never call the link's handlers: the
 * "server side" helpers (open, message, serverClose, ...) do, and tests call
 * them after the transport call has returned, as a real WebSocket would.
 */
export class FakeUpstreamSocket implements UpstreamSocket {
  readonly sent: string[] = [];
  closedWith: { code: number; reason: string } | null = null;
  terminated = false;
  sendResult: SendResult = "sent";

  constructor(
    readonly url: string,
    readonly handlers: UpstreamHandlers,
  ) {}

  send(text: string): SendResult {
    if (this.closedWith || this.terminated) return "dropped";
    this.sent.push(text);
    return this.sendResult;
  }

  close(code: number, reason: string): void {
    this.closedWith ??= { code, reason };
  }

  terminate(): void {
    this.terminated = true;
  }

  frames(): Json[] {
    return this.sent.map((s) => JSON.parse(s) as Json);
  }

  // server side
  open(): void {
    this.handlers.onOpen();
  }

  message(frame: Json | string): void {
    this.handlers.onMessage(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  authenticated(daemonId = "upstream-daemon-1"): void {
    this.message({ type: "authenticated", daemonId });
  }

  serverClose(code = 1006, reason = ""): void {
    this.handlers.onClose(code, reason);
  }

  error(message: string): void {
    this.handlers.onError(message);
  }

  drain(): void {
    this.handlers.onDrain();
  }
}

/** The link options the unit tests start from: 1 s base backoff, 10 s cap, 30 s heartbeat. */
export const LINK_OPTIONS: UpstreamLinkOptions = {
  url: "wss://makima.example/ws/daemon",
  unconfiguredReason: null,
  baseMs: 1000,
  maxMs: 10_000,
  maxReconnects: null,
  connectTimeoutMs: 5000,
  heartbeatMs: 30_000,
};

export class FakeTransport {
  readonly sockets: FakeUpstreamSocket[] = [];
  /** Makes the next transport call throw (a bad URL, say). */
  throwNext: Error | null = null;

  readonly connect: UpstreamTransport = (url, handlers) => {
    if (this.throwNext) {
      const err = this.throwNext;
      this.throwNext = null;
      throw err;
    }
    const socket = new FakeUpstreamSocket(url, handlers);
    this.sockets.push(socket);
    return socket;
  };

  get calls(): number {
    return this.sockets.length;
  }

  get last(): FakeUpstreamSocket {
    const s = this.sockets.at(-1);
    if (!s) throw new Error("no upstream socket was created");
    return s;
  }
}

// ---- logging ----------------------------------------------------------------

export interface LogEntry {
  kind: "log" | "connection";
  level: LogLevel;
  event: string;
  details?: string;
  fields?: Record<string, unknown>;
  options?: ConnectionLogOptions;
}

export class FakeLog implements EventLog {
  readonly entries: LogEntry[] = [];

  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void {
    this.entries.push({ kind: "log", level, event, ...(fields ? { fields } : {}) });
  }

  connection(
    event: string,
    details: string,
    level: LogLevel = "info",
    options?: ConnectionLogOptions,
  ): void {
    this.entries.push({
      kind: "connection",
      level,
      event,
      details,
      ...(options ? { options } : {}),
    });
  }

  events(name: string): LogEntry[] {
    return this.entries.filter((e) => e.event === name);
  }
}

// ---- stores -----------------------------------------------------------------

export {
  createMemoryStores,
  MemoryBindingStore,
  MemoryConnectionLogStore,
  MemoryMetaStore,
  MemoryOutboxStore,
  type MemoryStores,
  MemoryTaskStore,
} from "../../src/store/memory-stores.ts";

// ---- small helpers ------------------------------------------------------------

/** A tiny deterministic PRNG (mulberry32): same seed, same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
