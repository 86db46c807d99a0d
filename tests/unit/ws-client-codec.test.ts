import { describe, expect, test } from "bun:test";
import {
  acceptFor,
  encodeClose,
  encodeFrame,
  FrameReader,
  handshakeRequest,
  Opcode,
  readHandshake,
} from "../../src/transport/ws-client-codec.ts";

/** A server frame (unmasked), optionally not final. */
function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0, n]) : n < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (n >= 126 && n < 65_536) {
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else if (n >= 65_536) {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

/** Undoes the client's masking, as a server does. */
function unmask(frame: Buffer): { opcode: number; payload: Buffer } {
  let n = (frame[1] as number) & 0x7f;
  let at = 2;
  if (n === 126) {
    n = frame.readUInt16BE(2);
    at = 4;
  } else if (n === 127) {
    n = Number(frame.readBigUInt64BE(2));
    at = 10;
  }
  expect((frame[1] as number) & 0x80).toBe(0x80);
  const mask = frame.subarray(at, at + 4);
  const payload = Buffer.from(frame.subarray(at + 4, at + 4 + n));
  for (let i = 0; i < n; i++) payload[i] = (payload[i] as number) ^ (mask[i & 3] as number);
  return { opcode: (frame[0] as number) & 0x0f, payload };
}

describe("handshake", () => {
  test("the request names the path, query and key; the RFC's example accept value matches", () => {
    const req = handshakeRequest(
      new URL("ws://relay.example:8787/ws/daemon?x=1"),
      "dGhlIHNhbXBsZSBub25jZQ==",
    );
    expect(req.startsWith("GET /ws/daemon?x=1 HTTP/1.1\r\nHost: relay.example:8787\r\n")).toBe(
      true,
    );
    expect(req.endsWith("\r\n\r\n")).toBe(true);
    // RFC 6455 §1.3.
    expect(acceptFor("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  test("an answer is accepted only when complete, 101, upgraded and with the right accept", () => {
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const good = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`;
    expect(readHandshake(Buffer.from(good.slice(0, 30)), key)).toBeNull();
    const withFrame = Buffer.concat([
      Buffer.from(good),
      serverFrame(Opcode.text, Buffer.from("hi")),
    ]);
    const ok = readHandshake(withFrame, key);
    expect(ok?.ok && ok.value.length).toBe(4);
    const refused = readHandshake(Buffer.from("HTTP/1.1 401 Unauthorized\r\n\r\n"), key);
    expect(refused).toEqual({
      ok: false,
      error: 'server answered "HTTP/1.1 401 Unauthorized"',
    });
    const wrong = readHandshake(Buffer.from(good.replace(acceptFor(key), "nope")), key);
    expect(wrong).toEqual({ ok: false, error: "wrong Sec-WebSocket-Accept" });
  });
});

describe("client frames", () => {
  test.each([0, 1, 125, 126, 65_535, 65_536, 200_000])(
    "a %i-byte text frame is masked and decodes back",
    (n) => {
      const text = "é".repeat(Math.floor(n / 2)) + "x".repeat(n % 2);
      const frame = encodeFrame(Opcode.text, Buffer.from(text));
      expect((frame[0] as number) & 0x80).toBe(0x80);
      const { opcode, payload } = unmask(frame);
      expect(opcode).toBe(Opcode.text);
      expect(payload.toString("utf8")).toBe(text);
    },
  );

  test("two frames of the same text use different masks", () => {
    const a = encodeFrame(Opcode.text, Buffer.from("same"));
    const b = encodeFrame(Opcode.text, Buffer.from("same"));
    expect(a.subarray(2, 6).equals(b.subarray(2, 6))).toBe(false);
  });

  test("a close frame carries the code and the reason", () => {
    const { opcode, payload } = unmask(encodeClose(1000, "bye"));
    expect(opcode).toBe(Opcode.close);
    expect(payload.readUInt16BE(0)).toBe(1000);
    expect(payload.subarray(2).toString()).toBe("bye");
  });
});

describe("FrameReader", () => {
  test("frames split at every byte boundary still come out whole and in order", () => {
    const big = "y".repeat(70_000);
    const stream = Buffer.concat([
      serverFrame(Opcode.text, Buffer.from('{"type":"spawnTask","taskId":"a"}')),
      serverFrame(Opcode.text, Buffer.from(big)),
      serverFrame(Opcode.ping, Buffer.from("p")),
      serverFrame(Opcode.text, Buffer.from("frag-"), false),
      serverFrame(Opcode.continuation, Buffer.from("ment")),
      serverFrame(Opcode.close, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from("done")])),
    ]);
    for (const step of [1, 7, 1000, stream.length]) {
      const reader = new FrameReader(1_000_000);
      const events = [];
      for (let i = 0; i < stream.length; i += step)
        events.push(...reader.push(stream.subarray(i, i + step)));
      expect(events.map((e) => (e.kind === "message" ? e.text.slice(0, 20) : e.kind))).toEqual([
        '{"type":"spawnTask",',
        "y".repeat(20),
        "ping",
        "frag-ment",
        "close",
      ]);
      expect(events.at(-1)).toEqual({ kind: "close", code: 1000, reason: "done" });
    }
  });

  test("protocol violations are reported, not thrown", () => {
    expect(new FrameReader(10).push(serverFrame(Opcode.text, Buffer.alloc(11)))).toEqual([
      { kind: "error", code: 1009, reason: "message from the server too large" },
    ]);
    expect(
      new FrameReader(100).push(serverFrame(Opcode.continuation, Buffer.from("x")))[0]?.kind,
    ).toBe("error");
    expect(new FrameReader(100).push(serverFrame(3, Buffer.from("x")))[0]).toEqual({
      kind: "error",
      code: 1002,
      reason: "unknown opcode 3",
    });
  });
});
