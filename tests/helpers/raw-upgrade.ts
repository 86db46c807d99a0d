/**
 * A bare WebSocket upgrade over node:net, from a chosen local address (a
 * second loopback address such as 127.0.0.2 is a distinct client to the
 * relay). It sends nothing after the upgrade: an idle socket, as a flood
 * opens them. Bun's WebSocket client cannot pick its local address.
 */
import { connect } from "node:net";

export interface RawUpgrade {
  /** The HTTP answer: 101, or the refusal with its body. */
  answered: Promise<{ status: number; body: string }>;
  /** How the relay closed the socket (the WebSocket close code; 1006 without one), and when. */
  closed: Promise<{ code: number; atMs: number }>;
  /** Sends one text frame (masked, as a client must; under 64 KiB). */
  sendText(text: string): void;
  destroy(): void;
}

export function rawUpgrade(port: number, localAddress: string, host = "127.0.0.1"): RawUpgrade {
  const answered = Promise.withResolvers<{ status: number; body: string }>();
  const closed = Promise.withResolvers<{ code: number; atMs: number }>();
  const socket = connect({ host, port, localAddress });
  let buffer = Buffer.alloc(0);
  let status = 0;
  let code = 1006;
  socket.on("connect", () => {
    socket.write(
      [
        "GET /ws/daemon HTTP/1.1",
        `Host: ${host}:${port}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        `Sec-WebSocket-Key: ${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64")}`,
        "",
        "",
      ].join("\r\n"),
    );
  });
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (status === 0) {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString();
      status = Number(head.split(" ")[1]);
      buffer = buffer.subarray(end + 4);
      if (status !== 101) {
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? buffer.length);
        if (buffer.length < length) return; // the rest of the body follows
      }
    }
    if (status !== 101) {
      answered.resolve({ status, body: buffer.toString() });
      socket.destroy();
      return;
    }
    answered.resolve({ status, body: "" });
    // Server frames are unmasked: opcode, a length (7 bits, or 126 and 16 bits), the payload.
    // The close frame's payload starts with its 2-byte code.
    while (buffer.length >= 2) {
      const short = (buffer[1] as number) & 0x7f;
      const start = short === 126 ? 4 : 2;
      const length = short === 126 ? buffer.readUInt16BE(2) : short;
      if (buffer.length < start + length) return;
      if (((buffer[0] as number) & 0x0f) === 0x8 && length >= 2) code = buffer.readUInt16BE(start);
      buffer = buffer.subarray(start + length);
    }
  });
  socket.on("close", () => {
    answered.resolve({ status: status || 0, body: "" });
    closed.resolve({ code, atMs: performance.now() });
  });
  socket.on("error", () => {});
  return {
    answered: answered.promise,
    closed: closed.promise,
    sendText: (text) => {
      const payload = Buffer.from(text);
      const mask = crypto.getRandomValues(new Uint8Array(4));
      const short = payload.length < 126;
      const head = Buffer.alloc(short ? 2 : 4);
      head[0] = 0x81;
      head[1] = 0x80 | (short ? payload.length : 126);
      if (!short) head.writeUInt16BE(payload.length, 2);
      const masked = payload.map((b, i) => b ^ (mask[i % 4] as number));
      socket.write(Buffer.concat([head, mask, masked]));
    },
    destroy: () => socket.destroy(),
  };
}
