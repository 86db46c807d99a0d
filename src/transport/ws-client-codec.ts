/**
 * The client side of RFC 6455, with no I/O: the opening handshake and
 * control frames (frames in: ws-frame-reader.ts; the queue of masked frames
 * out: ws-frame-writer.ts). The upstream link uses it over a raw socket
 * because Bun's WebSocket client writes every frame with its own syscall and
 * has no cork: writing a turn's frames in one buffer costs less relay CPU a
 * frame (BENCHMARKS.md).
 */
import { createHash, randomBytes } from "node:crypto";
import { err, ok, type Result } from "../protocol/result.ts";
import { Opcode } from "./ws-frame-reader.ts";
import { headerBytes, maskInPlace, masks } from "./ws-frame-writer.ts";

export { FrameReader, Opcode, type ServerEvent } from "./ws-frame-reader.ts";
export { FrameQueue } from "./ws-frame-writer.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Longest handshake answer read (a server's header block, or a proxy's). */
export const MAX_HEAD_BYTES = 16_384;

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

/** An HTTP response head: its status line, headers (lower-case names) and what follows it. */
export interface ResponseHead {
  status: number;
  statusLine: string;
  headers: Map<string, string>;
  rest: Buffer;
}

/** Null until the head is complete (a blank line), or why it cannot be one. */
export function readResponseHead(received: Buffer): Result<ResponseHead, string> | null {
  const end = received.indexOf("\r\n\r\n");
  if (end < 0) return received.length > MAX_HEAD_BYTES ? err("answer head too long") : null;
  const lines = received.subarray(0, end).toString("latin1").split("\r\n");
  const statusLine = lines[0] ?? "";
  const status = /^HTTP\/1\.[01] (\d{3})\b/.exec(statusLine);
  if (!status) return err(`not an HTTP answer: "${statusLine.slice(0, 80)}"`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0)
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return ok({ status: Number(status[1]), statusLine, headers, rest: received.subarray(end + 4) });
}

/**
 * Reads the server's answer to the handshake from what has arrived so far:
 * null until its header is complete, then the bytes after it (the first
 * frames, often none) or why the server refused (RFC 6455 §4.1: the client
 * fails the connection unless every one of these holds).
 */
export function readHandshake(received: Buffer, key: string): Result<Buffer, string> | null {
  const head = readResponseHead(received);
  if (head === null || !head.ok) return head;
  const { status, statusLine, headers, rest } = head.value;
  if (status !== 101 || !statusLine.startsWith("HTTP/1.1 "))
    return err(`server answered "${statusLine}"`);
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") return err("no Upgrade: websocket");
  const connection = (headers.get("connection") ?? "").toLowerCase().split(/\s*,\s*/);
  if (!connection.includes("upgrade")) return err("no Connection: Upgrade");
  if (headers.get("sec-websocket-accept") !== acceptFor(key))
    return err("wrong Sec-WebSocket-Accept");
  // None was asked for, so none may be in force.
  if (headers.has("sec-websocket-extensions"))
    return err("an extension the client did not ask for");
  if (headers.has("sec-websocket-protocol")) return err("a subprotocol the client did not ask for");
  return ok(rest);
}

/** One masked frame of `payload` in a buffer of its own (control frames, tests). */
export function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const header = headerBytes(n);
  const frame = Buffer.allocUnsafe(header + 4 + n);
  frame[0] = 0x80 | opcode;
  if (header === 2) {
    frame[1] = 0x80 | n;
  } else if (header === 4) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  masks.writeNext(frame, header);
  payload.copy(frame, header + 4);
  maskInPlace(frame, null, header + 4, frame.length);
  return frame;
}

/** A close frame's payload; the reason is cut to the 123 bytes a control frame has room for (§5.5). */
export function closePayload(code: number, reason: string): Buffer {
  let text = Buffer.from(reason);
  if (text.length > 123) {
    let end = 123;
    // Back off to a character boundary: continuation bytes are 10xxxxxx.
    while (end > 0 && ((text[end] as number) & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const body = Buffer.allocUnsafe(2 + text.length);
  body.writeUInt16BE(code, 0);
  text.copy(body, 2);
  return body;
}

/** A close frame (closePayload). */
export const encodeClose = (code: number, reason: string): Buffer =>
  encodeFrame(Opcode.close, closePayload(code, reason));
