/**
 * Frames from the server, reassembled from however the bytes were split, with
 * the checks RFC 6455 asks of a client: no reserved bits (no extension is
 * negotiated, §5.2), no masking (§5.1), control frames final and at most 125
 * bytes (§5.5), known opcodes, text that is UTF-8 (§8.1), close codes that may
 * be sent (§7.4), and a bound on a message's total size, fragments included.
 *
 * Bytes are kept as the chunks that arrived and a payload is joined once when
 * it is complete (a view when it lies in one chunk), so a large frame is
 * copied at most once. Holds at most one message, one frame header and one
 * chunk: a length over the bound fails as soon as the header is read.
 */
import { isUtf8 } from "node:buffer";

export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** Close codes for failing the connection (RFC 6455 §7.4.1). */
export const CloseCode = { protocolError: 1002, invalidData: 1007, tooBig: 1009 } as const;

export type ServerEvent =
  | { kind: "message"; text: string }
  | { kind: "ping"; payload: Buffer }
  | { kind: "close"; code: number; reason: string }
  /** The connection must fail; `code` is what to send the server in the close frame. */
  | { kind: "error"; code: number; reason: string };

type Failure = Extract<ServerEvent, { kind: "error" }>;

interface Header {
  fin: boolean;
  opcode: number;
  length: number;
  /** Header bytes before the payload. */
  size: number;
}

/** The bytes that arrived and are not read yet, as the chunks they came in. */
class ByteQueue {
  private chunks: Buffer[] = [];
  /** chunks before this index are read (dropped in bulk, not shifted one by one). */
  private first = 0;
  /** Read position in chunks[first]. */
  private head = 0;
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The i-th unread byte (i < length). Headers are read byte by byte: at most 14. */
  byte(i: number): number {
    let at = this.head + i;
    for (let c = this.first; c < this.chunks.length; c++) {
      const chunk = this.chunks[c] as Buffer;
      if (at < chunk.length) return chunk[at] as number;
      at -= chunk.length;
    }
    throw new RangeError("read past the queued bytes");
  }

  skip(n: number): void {
    this.take(n, null);
  }

  /** Removes n bytes (n <= length), appending them to `into` as views of the chunks (no copy). */
  take(n: number, into: Buffer[] | null): void {
    this.length -= n;
    while (n > 0) {
      const chunk = this.chunks[this.first] as Buffer;
      const left = chunk.length - this.head;
      if (n < left) {
        into?.push(chunk.subarray(this.head, this.head + n));
        this.head += n;
        break;
      }
      into?.push(this.head === 0 ? chunk : chunk.subarray(this.head));
      this.first += 1;
      this.head = 0;
      n -= left;
    }
    if (this.first === this.chunks.length) this.clear();
    else if (this.first > 64) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.first = 0;
    this.head = 0;
    this.length = 0;
  }
}

const join = (pieces: Buffer[], bytes: number): Buffer =>
  pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, bytes);

/** Codes a peer may put in a close frame (RFC 6455 §7.4.1, §7.4.2; IANA registry). */
const sendableCloseCode = (code: number): boolean =>
  (code >= 1000 && code <= 1003) ||
  (code >= 1007 && code <= 1014) ||
  (code >= 3000 && code <= 4999);

export class FrameReader {
  private readonly queue = new ByteQueue();
  /** The data frames of the message being received, and their opcode. */
  private message: Buffer[] = [];
  private messageBytes = 0;
  private messageOpcode: number | null = null;
  /** After a close or an error nothing more is read. */
  private done = false;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes held: unread input and the message so far (bounded, see the file comment). */
  bufferedBytes(): number {
    return this.queue.length + this.messageBytes;
  }

  push(chunk: Buffer): ServerEvent[] {
    if (this.done) return [];
    this.queue.push(chunk);
    const events: ServerEvent[] = [];
    while (!this.done) {
      const event = this.next();
      if (event === undefined) break;
      if (event === null) continue;
      events.push(event);
      if (event.kind === "close" || event.kind === "error") this.end();
    }
    return events;
  }

  private end(): void {
    this.done = true;
    this.queue.clear();
    this.message = [];
    this.messageBytes = 0;
  }

  /** The next event; null for a frame that makes none (a pong, a fragment); undefined to wait. */
  private next(): ServerEvent | null | undefined {
    const header = this.header();
    if (header === undefined || "kind" in header) return header;
    const { fin, opcode, length, size } = header;
    if (opcode >= 8) {
      if (this.queue.length < size + length) return undefined;
      this.queue.skip(size);
      const pieces: Buffer[] = [];
      this.queue.take(length, pieces);
      return control(opcode, join(pieces, length));
    }
    if ((opcode === Opcode.continuation) !== (this.messageOpcode !== null))
      return failure(
        CloseCode.protocolError,
        opcode === Opcode.continuation
          ? "continuation without a message"
          : "new message inside a fragmented one",
      );
    if (this.messageBytes + length > this.maxMessageBytes)
      return failure(CloseCode.tooBig, "message from the server too large");
    if (this.queue.length < size + length) return undefined;
    this.queue.skip(size);
    this.queue.take(length, this.message);
    this.messageBytes += length;
    if (opcode !== Opcode.continuation) this.messageOpcode = opcode;
    return fin ? this.completeMessage() : null;
  }

  private completeMessage(): ServerEvent {
    const whole = join(this.message, this.messageBytes);
    const text = this.messageOpcode === Opcode.text;
    this.message = [];
    this.messageBytes = 0;
    this.messageOpcode = null;
    // Binary messages are read as UTF-8 too (the protocol is JSON text), without the check.
    if (text && !isUtf8(whole)) return failure(CloseCode.invalidData, "text that is not UTF-8");
    return { kind: "message", text: whole.toString("utf8") };
  }

  /** The next frame's header once its bytes are in, or why the frame is refused. */
  private header(): Header | Failure | undefined {
    const q = this.queue;
    if (q.length < 2) return undefined;
    const b0 = q.byte(0);
    const b1 = q.byte(1);
    const opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) return failure(CloseCode.protocolError, "reserved bits set");
    if ((b1 & 0x80) !== 0) return failure(CloseCode.protocolError, "masked frame from the server");
    if (opcode > 10 || (opcode > 2 && opcode < 8))
      return failure(CloseCode.protocolError, `unknown opcode ${opcode}`);
    const fin = (b0 & 0x80) !== 0;
    let length = b1 & 0x7f;
    if (opcode >= 8 && (!fin || length > 125))
      return failure(CloseCode.protocolError, "control frame fragmented or over 125 bytes");
    let size = 2;
    if (length === 126) {
      if (q.length < 4) return undefined;
      length = (q.byte(2) << 8) | q.byte(3);
      size = 4;
    } else if (length === 127) {
      if (q.length < 10) return undefined;
      // The most significant bit must be 0 (§5.2); past 2^53 the size is over any bound anyway.
      if (q.byte(2) & 0x80) return failure(CloseCode.protocolError, "frame length out of range");
      length = 0;
      for (let i = 2; i < 10; i++) length = length * 256 + q.byte(i);
      size = 10;
    }
    return { fin, opcode, length, size };
  }
}

function control(opcode: number, payload: Buffer): ServerEvent | null {
  if (opcode === Opcode.ping) return { kind: "ping", payload: Buffer.from(payload) };
  if (opcode === Opcode.pong) return null;
  if (payload.length === 0) return { kind: "close", code: 1005, reason: "" };
  if (payload.length === 1) return failure(CloseCode.protocolError, "close frame of one byte");
  const code = payload.readUInt16BE(0);
  if (!sendableCloseCode(code)) return failure(CloseCode.protocolError, `close code ${code}`);
  const reason = payload.subarray(2);
  if (!isUtf8(reason)) return failure(CloseCode.invalidData, "close reason that is not UTF-8");
  return { kind: "close", code, reason: reason.toString("utf8") };
}

const failure = (code: number, reason: string): Failure => ({ kind: "error", code, reason });
