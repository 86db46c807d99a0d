/**
 * The upstream link's socket: a WebSocket client (RFC 6455) over Bun.connect,
 * TCP or TLS, direct or through an HTTP CONNECT proxy (upstream-dial.ts), with
 * the framing of ws-client-codec.ts and ws-frame-reader.ts. Bun's WebSocket
 * client has no cork and writes every frame separately; here frames sent
 * during one event-loop turn leave together at the end of the turn, or in
 * 16 KiB writes during a busy one (each still its own WebSocket frame on the
 * wire), which costs the relay less CPU a frame (BENCHMARKS.md). Backpressure
 * is the socket's own: what the kernel did not take waits for the drain event.
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
  closePayload,
  FrameQueue,
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
  /**
   * A turn that has queued this many bytes writes them at once instead of at
   * its end (EARLY_WRITE_BYTES).
   */
  earlyWriteBytes?: number;
  /** End-of-turn hook (tests may pass their own). */
  schedule?: (fn: () => void) => void;
  /** The HTTP proxy to tunnel through to a server, or null to connect directly. */
  proxyFor?: (url: URL) => URL | null;
}

/**
 * Frames wait for the end of the turn so that a turn's frames leave in one
 * write, but a busy turn (a burst from many daemons) can take milliseconds to
 * read: its first frames would wait for its last. Past this many bytes the
 * queue is written straight away, which bounds that wait to the time it takes
 * to read about this much, and lets the server start on it meanwhile; a write
 * of 16 KiB costs little next to reading 16 KiB of frames.
 */
const EARLY_WRITE_BYTES = 16 * 1024;

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
  /**
   * Frames not written yet: those sent this turn, written together at its
   * end, after what the kernel did not take last time (waiting for drain).
   */
  private readonly out: FrameQueue;
  private flushScheduled = false;
  /** The kernel did not take everything: nothing is written until the drain event. */
  private waitingDrain = false;
  private backpressured = false;
  /** The end was reported; nothing more is sent or read. */
  private ended = false;
  /** A close frame is on its way out: the socket ends once it has left. */
  private closing = false;
  /** Reading is paused (storage failing); applies once the socket opens. */
  private paused = false;
  private readonly highWater: number;
  private readonly earlyWrite: number;
  private readonly schedule: (fn: () => void) => void;

  constructor(
    url: URL,
    private readonly handlers: UpstreamHandlers,
    opts: BatchedTransportOptions,
  ) {
    this.highWater = opts.highWaterBytes ?? 1024 * 1024;
    // Sends stop at the high-water mark, so a queue past twice that is a one-off.
    this.out = new FrameQueue(2 * this.highWater);
    this.reader = new FrameReader(opts.maxMessageBytes ?? 64 * 1024 * 1024);
    this.earlyWrite = opts.earlyWriteBytes ?? EARLY_WRITE_BYTES;
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
    this.out.text(text, Opcode.text);
    // The end-of-turn flush still runs: it tells the link when backpressure is over.
    if (this.out.length >= this.earlyWrite && !this.waitingDrain && this.socket) {
      this.write(this.socket);
    }
    this.scheduleFlush();
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
    return this.out.length;
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
    this.out.frame(Opcode.close, closePayload(code, reason));
    this.closing = true;
    this.flush();
  }

  /** Half-closes once the kernel has every byte (the close frame last); drained() retries. */
  private endOnceSent(): void {
    if (this.closing && this.out.length === 0) {
      this.closing = false;
      this.socket?.end();
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.schedule(() => this.flush());
  }

  /** Writes the turn's frames in one go; while the kernel is full they wait for drain. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || !this.socket || this.waitingDrain) return;
    if (this.ended && !this.closing) return;
    this.write(this.socket);
    // The kernel may take the whole turn at once: then no drain event will come.
    this.maybeDrained();
  }

  /** One write of everything waiting; what the kernel leaves stays queued, in order. */
  private write(socket: Socket): void {
    const data = this.out.peek();
    const written = socket.write(data);
    this.out.consumed(Math.max(0, written));
    this.waitingDrain = written < data.length;
  }

  private drained(): void {
    this.waitingDrain = false;
    if (this.out.length > 0 && this.socket) this.write(this.socket);
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
      else if (event.kind === "ping") this.pong(event.payload);
      else if (event.kind === "close")
        // Echo the code (RFC 6455 §5.5.1); none given (1005) may not be sent back.
        this.close(event.code === 1005 ? 1000 : event.code, event.reason);
      else this.protocolError(event.code, event.reason);
    }
  }

  private pong(payload: Buffer): void {
    this.out.frame(Opcode.pong, payload);
    this.scheduleFlush();
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
    if (!this.closing) this.out.clear();
    this.handlers.onClose(code, reason);
  }
}
