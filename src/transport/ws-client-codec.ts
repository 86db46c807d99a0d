/**
 * The client side of RFC 6455 framing, with no I/O: the opening handshake,
 * masked frames out, unmasked frames in. The upstream link uses it over a raw
 * socket because Bun's WebSocket client writes every frame with its own
 * syscall and has no cork: writing a turn's frames in one buffer costs ~1 µs a
 * frame instead of ~5 (BENCHMARKS.md, recommendation 1).
 */
import { createHash, randomBytes } from "node:crypto";
import { err, ok, type Result } from "../protocol/result.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export function handshakeRequest(url: URL, key: string): string {
  const path = `${url.pathname || "/"}${url.search}`;
  return [
    `GET ${path} HTTP/1.1`,
    `Host: ${url.host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
    "",
    "",
  ].join("\r\n");
}

export const newKey = (): string => randomBytes(16).toString("base64");

export const acceptFor = (key: string): string =>
  createHash("sha1")
    .update(key + GUID)
    .digest("base64");

/**
 * Reads the server's answer to the handshake from what has arrived so far:
 * null until its header is complete, then the bytes after it (the first
 * frames, often none) or why the server refused.
 */
export function readHandshake(received: Buffer, key: string): Result<Buffer, string> | null {
  const end = received.indexOf("\r\n\r\n");
  if (end < 0) return received.length > 16_384 ? err("handshake answer too long") : null;
  const head = received.subarray(0, end).toString("latin1").split("\r\n");
  const status = head[0] ?? "";
  if (!/^HTTP\/1\.1 101\b/.test(status)) return err(`server answered "${status}"`);
  const headers = new Map<string, string>();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0)
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") return err("no Upgrade: websocket");
  if (headers.get("sec-websocket-accept") !== acceptFor(key))
    return err("wrong Sec-WebSocket-Accept");
  return ok(received.subarray(end + 4));
}

/** Random masking keys, drawn in bulk: one getRandomValues call per 1,024 frames. */
class MaskPool {
  private pool = Buffer.alloc(4096);
  private at = this.pool.length;

  next(): Buffer {
    if (this.at >= this.pool.length) {
      crypto.getRandomValues(this.pool);
      this.at = 0;
    }
    const key = this.pool.subarray(this.at, this.at + 4);
    this.at += 4;
    return key;
  }
}

const masks = new MaskPool();

/** One masked frame (client frames must be masked: RFC 6455 §5.3). */
export function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const header = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + 4 + n);
  frame[0] = 0x80 | opcode;
  if (n < 126) {
    frame[1] = 0x80 | n;
  } else if (n < 65_536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  const mask = masks.next();
  mask.copy(frame, header);
  const at = header + 4;
  for (let i = 0; i < n; i++) frame[at + i] = (payload[i] as number) ^ (mask[i & 3] as number);
  return frame;
}

export function encodeClose(code: number, reason: string): Buffer {
  const body = Buffer.alloc(2 + Buffer.byteLength(reason));
  body.writeUInt16BE(code, 0);
  body.write(reason, 2);
  return encodeFrame(Opcode.close, body);
}

export type ServerEvent =
  | { kind: "message"; text: string }
  | { kind: "ping"; payload: Buffer }
  | { kind: "close"; code: number; reason: string }
  | { kind: "error"; reason: string };

/** Reassembles frames from the server, however the bytes were split. */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];

  constructor(private readonly maxMessageBytes: number) {}

  push(chunk: Buffer): ServerEvent[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const events: ServerEvent[] = [];
    for (;;) {
      const frame = this.nextFrame();
      if (frame === null) break;
      if (!frame.ok) {
        events.push({ kind: "error", reason: frame.error });
        break;
      }
      const { fin, opcode, payload } = frame.value;
      const event = this.handle(fin, opcode, payload);
      if (event) events.push(event);
      if (event?.kind === "error" || event?.kind === "close") break;
    }
    return events;
  }

  /** Null until a whole frame has arrived, as readHandshake. */
  private nextFrame(): Result<{ fin: boolean; opcode: number; payload: Buffer }, string> | null {
    const b = this.buffered;
    if (b.length < 2) return null;
    const fin = ((b[0] as number) & 0x80) !== 0;
    const opcode = (b[0] as number) & 0x0f;
    const masked = ((b[1] as number) & 0x80) !== 0;
    let length = (b[1] as number) & 0x7f;
    let at = 2;
    if (length === 126) {
      if (b.length < 4) return null;
      length = b.readUInt16BE(2);
      at = 4;
    } else if (length === 127) {
      if (b.length < 10) return null;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(this.maxMessageBytes)) return err("frame from the server too large");
      length = Number(big);
      at = 10;
    }
    if (length > this.maxMessageBytes) return err("frame from the server too large");
    const maskAt = at;
    if (masked) at += 4;
    if (b.length < at + length) return null;
    let payload = b.subarray(at, at + length);
    if (masked) {
      // Servers must not mask (RFC 6455 §5.1), but unmasking costs nothing to get right.
      const copy = Buffer.allocUnsafe(length);
      for (let i = 0; i < length; i++)
        copy[i] = (payload[i] as number) ^ (b[maskAt + (i & 3)] as number);
      payload = copy;
    }
    this.buffered = b.subarray(at + length);
    return ok({ fin, opcode, payload });
  }

  private handle(fin: boolean, opcode: number, payload: Buffer): ServerEvent | null {
    switch (opcode) {
      case Opcode.ping:
        return { kind: "ping", payload: Buffer.from(payload) };
      case Opcode.pong:
        return null;
      case Opcode.close:
        return {
          kind: "close",
          code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005,
          reason: payload.length > 2 ? payload.subarray(2).toString("utf8") : "",
        };
      case Opcode.text:
      case Opcode.binary:
      case Opcode.continuation: {
        if (opcode !== Opcode.continuation && this.fragments.length > 0)
          return { kind: "error", reason: "new message inside a fragmented one" };
        if (opcode === Opcode.continuation && this.fragments.length === 0)
          return { kind: "error", reason: "continuation without a message" };
        if (fin && this.fragments.length === 0)
          return { kind: "message", text: payload.toString("utf8") };
        this.fragments.push(Buffer.from(payload));
        if (!fin) return null;
        const whole =
          this.fragments.length === 1
            ? (this.fragments[0] as Buffer)
            : Buffer.concat(this.fragments);
        this.fragments = [];
        return { kind: "message", text: whole.toString("utf8") };
      }
      default:
        return { kind: "error", reason: `unknown opcode ${opcode}` };
    }
  }
}
