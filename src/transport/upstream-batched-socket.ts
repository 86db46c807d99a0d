/**
 * The upstream link's socket with MAKIMA_RELAY_UPSTREAM_BATCH_WRITES: a
 * WebSocket client over Bun.connect (TCP or TLS) with the framing of
 * ws-client-codec.ts, because Bun's WebSocket client (the default,
 * upstream-websocket.ts) has no cork and writes every frame separately. Frames sent during one
 * event-loop turn leave in one write at the end of the turn (each is still
 * its own WebSocket frame on the wire), and backpressure is the socket's own:
 * what the kernel did not take waits for the drain event.
 */
import type { Socket } from "bun";
import type { SendResult } from "../core/ports.ts";
import type { UpstreamHandlers, UpstreamSocket, UpstreamTransport } from "../core/upstream-link.ts";
import {
  encodeClose,
  encodeFrame,
  FrameReader,
  handshakeRequest,
  newKey,
  Opcode,
  readHandshake,
} from "./ws-client-codec.ts";

export interface BatchedTransportOptions {
  /** PEM text of an extra CA to trust (private CA for wss://). */
  ca?: string | null;
  /** Above this many bytes waiting to be sent, a send reports backpressure. */
  highWaterBytes?: number;
  /** Largest message accepted from the server. */
  maxMessageBytes?: number;
  /** End-of-turn hook (tests may pass their own). */
  schedule?: (fn: () => void) => void;
}

export function createBatchedUpstreamTransport(
  opts: BatchedTransportOptions = {},
): UpstreamTransport {
  return (url, handlers) => new FramedSocket(new URL(url), handlers, opts);
}

class FramedSocket implements UpstreamSocket {
  private socket: Socket | null = null;
  private readonly key = newKey();
  private handshake: Buffer | null = Buffer.alloc(0);
  private readonly reader: FrameReader;
  /** Frames sent this turn, written together at its end. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  /** Bytes the kernel has not taken yet, waiting for drain. */
  private unsent: Buffer | null = null;
  private backpressured = false;
  private ended = false;
  /** Reading is paused (storage failing); applies once the socket opens. */
  private paused = false;
  private readonly highWater: number;
  private readonly schedule: (fn: () => void) => void;

  constructor(
    url: URL,
    private readonly handlers: UpstreamHandlers,
    opts: BatchedTransportOptions,
  ) {
    this.highWater = opts.highWaterBytes ?? 1024 * 1024;
    this.reader = new FrameReader(opts.maxMessageBytes ?? 64 * 1024 * 1024);
    this.schedule = opts.schedule ?? setImmediate;
    const secure = url.protocol === "wss:";
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    Bun.connect({
      hostname,
      port: Number(url.port) || (secure ? 443 : 80),
      ...(secure
        ? { tls: opts.ca ? { ca: opts.ca, serverName: hostname } : { serverName: hostname } }
        : {}),
      socket: {
        binaryType: "buffer",
        open: (s) => {
          this.socket = s;
          if (this.paused) s.pause();
          s.write(handshakeRequest(url, this.key));
        },
        data: (_s, chunk) => this.received(chunk),
        drain: () => this.drained(),
        close: () => this.finish(1006, "connection lost"),
        end: () => this.finish(1006, "connection ended by the server"),
        error: (_s, err) => this.failed(err.message),
        connectError: (_s, err) => this.failed(err.message),
      },
    }).catch((err: Error) => this.failed(err.message));
  }

  send(text: string): SendResult {
    if (this.handshake !== null || this.ended) return "dropped";
    this.enqueue(encodeFrame(Opcode.text, Buffer.from(text)));
    if (this.bufferedAmount() <= this.highWater) return "sent";
    this.backpressured = true;
    return "backpressure";
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    if (this.handshake === null) {
      this.enqueue(encodeClose(code, reason));
      this.flush();
    }
    // Reported first: ending the socket runs its close handler synchronously.
    const socket = this.socket;
    this.finish(code, reason);
    socket?.end();
  }

  terminate(): void {
    const socket = this.socket;
    this.finish(1006, "terminated");
    socket?.terminate();
  }

  bufferedAmount(): number {
    return this.queuedBytes + (this.unsent?.length ?? 0);
  }

  pause(): void {
    this.paused = true;
    this.socket?.pause();
  }

  resume(): void {
    this.paused = false;
    this.socket?.resume();
  }

  private enqueue(frame: Buffer): void {
    this.queued.push(frame);
    this.queuedBytes += frame.length;
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.schedule(() => this.flush());
  }

  /** Writes the turn's frames in one go; what the kernel leaves waits for drain. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.queued.length === 0 || !this.socket || this.ended) return;
    const data =
      this.queued.length === 1
        ? (this.queued[0] as Buffer)
        : Buffer.concat(this.queued, this.queuedBytes);
    this.queued = [];
    this.queuedBytes = 0;
    if (this.unsent) {
      this.unsent = Buffer.concat([this.unsent, data]);
      return;
    }
    const written = this.socket.write(data);
    if (written < data.length) this.unsent = data.subarray(Math.max(0, written));
    // The kernel may take the whole turn at once: then no drain event will come.
    this.maybeDrained();
  }

  private drained(): void {
    if (this.unsent && this.socket) {
      const data = this.unsent;
      const written = this.socket.write(data);
      this.unsent = written < data.length ? data.subarray(Math.max(0, written)) : null;
    }
    this.maybeDrained();
  }

  /** Tells the link once a backpressured send's bytes have mostly left. */
  private maybeDrained(): void {
    if (this.backpressured && this.bufferedAmount() <= this.highWater / 2) {
      this.backpressured = false;
      this.handlers.onDrain();
    }
  }

  private received(chunk: Buffer): void {
    if (this.ended) return;
    let bytes = chunk;
    if (this.handshake !== null) {
      const answer = readHandshake(Buffer.concat([this.handshake, chunk]), this.key);
      if (answer === null) {
        this.handshake = Buffer.concat([this.handshake, chunk]);
        return;
      }
      if (!answer.ok) {
        this.failed(`WebSocket handshake failed: ${answer.error}`);
        return;
      }
      this.handshake = null;
      this.handlers.onOpen();
      bytes = answer.value;
      if (bytes.length === 0) return;
    }
    for (const event of this.reader.push(bytes)) {
      if (this.ended) return;
      if (event.kind === "message") this.handlers.onMessage(event.text);
      else if (event.kind === "ping") this.enqueue(encodeFrame(Opcode.pong, event.payload));
      else if (event.kind === "close")
        this.close(event.code === 1005 ? 1000 : event.code, event.reason);
      else this.failed(`protocol error from the server: ${event.reason}`);
    }
  }

  private failed(message: string): void {
    if (this.ended) return;
    this.handlers.onError(message);
    const socket = this.socket;
    this.finish(1006, message);
    socket?.terminate();
  }

  /** Reports the end once, whatever ended it first. */
  private finish(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.queued = [];
    this.queuedBytes = 0;
    this.unsent = null;
    this.handlers.onClose(code, reason);
  }
}
