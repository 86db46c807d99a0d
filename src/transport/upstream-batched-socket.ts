/**
 * The upstream link's socket: a WebSocket client (RFC 6455) over Bun.connect,
 * TCP or TLS, direct or through an HTTP CONNECT proxy (upstream-dial.ts), with
 * the framing of ws-client-codec.ts and ws-frame-reader.ts. Bun's WebSocket
 * client has no cork and writes every frame separately; here frames sent
 * during one event-loop turn leave in one write at the end of the turn (each
 * still its own WebSocket frame on the wire), which costs the relay less CPU a
 * frame (BENCHMARKS.md). Backpressure is the socket's own: what the kernel did
 * not take waits for the drain event.
 */
import type { Socket } from "bun";
import type { SendResult } from "../core/ports.ts";
import type {
  UpstreamHandlers,
  UpstreamSocket,
  UpstreamTransport,
} from "../core/upstream-socket.ts";
import { dial } from "./upstream-dial.ts";
import {
  encodeClose,
  encodeFrame,
  encodeText,
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
  /** Largest message accepted from the server, fragments included. */
  maxMessageBytes?: number;
  /** End-of-turn hook (tests may pass their own). */
  schedule?: (fn: () => void) => void;
  /** The HTTP proxy to tunnel through to a server, or null to connect directly. */
  proxyFor?: (url: URL) => URL | null;
}

export function createBatchedUpstreamTransport(
  opts: BatchedTransportOptions = {},
): UpstreamTransport {
  return (url, handlers) => new FramedSocket(new URL(url), handlers, opts);
}

class FramedSocket implements UpstreamSocket {
  private socket: Socket | null = null;
  private readonly connection: { terminate(): void };
  private readonly key = newKey();
  /** The handshake answer so far; null once the server has accepted. */
  private handshake: Buffer | null = Buffer.alloc(0);
  private readonly reader: FrameReader;
  /** Frames sent this turn, written together at its end. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  /** Bytes the kernel has not taken yet, waiting for drain. */
  private unsent: Buffer | null = null;
  private backpressured = false;
  /** The end was reported; nothing more is sent or read. */
  private ended = false;
  /** A close frame is on its way out: the socket ends once it has left. */
  private closing = false;
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
    this.connection = dial(
      url,
      { ca: opts.ca ?? null, proxy: opts.proxyFor?.(url) ?? null },
      {
        ready: (socket, early) => {
          this.socket = socket;
          if (this.paused) socket.pause();
          socket.write(handshakeRequest(url, this.key));
          if (early.length > 0) this.received(early);
        },
        data: (chunk) => this.received(chunk),
        drain: () => this.drained(),
        closed: (why) => this.finish(1006, why),
        failed: (message) => this.failed(message),
      },
    );
  }

  send(text: string): SendResult {
    if (this.handshake !== null || this.ended) return "dropped";
    this.enqueue(encodeText(text));
    if (this.bufferedAmount() <= this.highWater) return "sent";
    this.backpressured = true;
    return "backpressure";
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    if (this.handshake !== null) {
      this.abort(code, reason);
      return;
    }
    this.sendClose(code, reason);
    // Reported first: ending the socket runs its close handler synchronously.
    this.finish(code, reason);
    this.endOnceSent();
  }

  terminate(): void {
    this.abort(1006, "terminated");
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

  /** Queues a close frame and writes what is queued now, ahead of the end of the turn. */
  private sendClose(code: number, reason: string): void {
    this.enqueue(encodeClose(code, reason));
    this.closing = true;
    this.flush();
  }

  /** Half-closes once the kernel has every byte (the close frame last); drained() retries. */
  private endOnceSent(): void {
    if (this.closing && this.unsent === null && this.queued.length === 0) {
      this.closing = false;
      this.socket?.end();
    }
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
    if (this.queued.length === 0 || !this.socket) return;
    if (this.ended && !this.closing) return;
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
    this.endOnceSent();
  }

  /** Tells the link once a backpressured send's bytes have mostly left. */
  private maybeDrained(): void {
    if (this.ended || !this.backpressured) return;
    if (this.bufferedAmount() <= this.highWater / 2) {
      this.backpressured = false;
      this.handlers.onDrain();
    }
  }

  private received(chunk: Buffer): void {
    if (this.ended) return;
    let bytes = chunk;
    if (this.handshake !== null) {
      const sofar = this.handshake.length === 0 ? chunk : Buffer.concat([this.handshake, chunk]);
      const answer = readHandshake(sofar, this.key);
      if (answer === null) {
        this.handshake = sofar;
        return;
      }
      if (!answer.ok) {
        this.failed(`WebSocket handshake failed: ${answer.error}`);
        return;
      }
      this.handshake = null;
      this.handlers.onOpen();
      bytes = answer.value;
      if (bytes.length === 0 || this.ended) return;
    }
    for (const event of this.reader.push(bytes)) {
      if (this.ended) return;
      if (event.kind === "message") this.handlers.onMessage(event.text);
      else if (event.kind === "ping") this.enqueue(encodeFrame(Opcode.pong, event.payload));
      else if (event.kind === "close")
        // Echo the code (RFC 6455 §5.5.1); none given (1005) may not be sent back.
        this.close(event.code === 1005 ? 1000 : event.code, event.reason);
      else this.protocolError(event.code, event.reason);
    }
  }

  /** Fails the connection as §7.1.7 asks: a close frame with the reason's code, then the end. */
  private protocolError(code: number, reason: string): void {
    const message = `protocol error from the server: ${reason}`;
    this.handlers.onError(message);
    this.sendClose(code, reason);
    this.finish(code, message);
    this.endOnceSent();
  }

  private failed(message: string): void {
    if (this.ended) return;
    this.handlers.onError(message);
    this.abort(1006, message);
  }

  /** Ends at once, dropping what is not sent. */
  private abort(code: number, reason: string): void {
    this.closing = false;
    this.finish(code, reason);
    this.connection.terminate();
  }

  /** Reports the end once, whatever ended it first. */
  private finish(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.closing) {
      this.queued = [];
      this.queuedBytes = 0;
      this.unsent = null;
    }
    this.handlers.onClose(code, reason);
  }
}
