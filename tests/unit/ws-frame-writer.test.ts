import { describe, expect, test } from "bun:test";
import { Opcode } from "../../src/transport/ws-client-codec.ts";
import { FrameQueue, maskInPlace } from "../../src/transport/ws-frame-writer.ts";

interface Decoded {
  opcode: number;
  header: number;
  payload: Buffer;
}

/** Reads masked client frames back as a server does, checking that each length is in its shortest form. */
function decodeAll(bytes: Buffer): Decoded[] {
  const out: Decoded[] = [];
  let at = 0;
  while (at < bytes.length) {
    expect((bytes[at] as number) & 0x80).toBe(0x80);
    expect((bytes[at + 1] as number) & 0x80).toBe(0x80);
    let n = (bytes[at + 1] as number) & 0x7f;
    let header = 2;
    if (n === 126) {
      n = bytes.readUInt16BE(at + 2);
      header = 4;
      expect(n).toBeGreaterThanOrEqual(126);
    } else if (n === 127) {
      n = Number(bytes.readBigUInt64BE(at + 2));
      header = 10;
      expect(n).toBeGreaterThanOrEqual(65_536);
    }
    const key = bytes.subarray(at + header, at + header + 4);
    const start = at + header + 4;
    const payload = Buffer.from(bytes.subarray(start, start + n));
    for (let i = 0; i < n; i++) payload[i] = (payload[i] as number) ^ (key[i & 3] as number);
    out.push({ opcode: (bytes[at] as number) & 0x0f, header, payload });
    at = start + n;
  }
  expect(at).toBe(bytes.length);
  return out;
}

/** Texts around every header boundary, in UTF-16 units and in bytes, ASCII or not. */
const TEXTS = [
  "",
  "x",
  "é".repeat(41),
  "x".repeat(125),
  "x".repeat(126),
  "é".repeat(63),
  "€".repeat(42),
  "x".repeat(16_384),
  "€".repeat(21_845),
  "€".repeat(21_846),
  "x".repeat(65_535),
  "é".repeat(32_768),
  "x".repeat(65_536),
  "a\ud800b\udc00c😀",
];

describe("FrameQueue", () => {
  test("text frames decode to the UTF-8 of their text, with the shortest length form", () => {
    const q = new FrameQueue();
    for (const t of TEXTS) q.text(t, Opcode.text);
    const frames = decodeAll(Buffer.from(q.peek()));
    expect(frames.map((f, i) => f.payload.equals(Buffer.from(TEXTS[i] as string)))).toEqual(
      TEXTS.map(() => true),
    );
    expect(frames.map((f) => f.opcode)).toEqual(TEXTS.map(() => Opcode.text));
    expect(q.length).toBe(frames.reduce((sum, f) => sum + f.header + 4 + f.payload.length, 0));
  });

  test("frames at every alignment are masked correctly", () => {
    const q = new FrameQueue();
    const texts = Array.from({ length: 40 }, (_, i) => `${"z".repeat(i)}{"type":"taskOutput"}`);
    for (const t of texts) q.text(t, Opcode.text);
    expect(decodeAll(Buffer.from(q.peek())).map((f) => f.payload.toString())).toEqual(texts);
  });

  test("what the socket did not take stays, in order, ahead of later frames", () => {
    const q = new FrameQueue();
    q.text("first", Opcode.text);
    const total = q.length;
    q.consumed(3);
    const rest = Buffer.from(q.peek());
    q.frame(Opcode.pong, Buffer.from("p"));
    q.text("y".repeat(200_000), Opcode.text);
    const all = Buffer.concat([rest, Buffer.from(q.peek().subarray(rest.length))]);
    expect(all.length).toBe(q.length);
    expect(q.length).toBeGreaterThan(total);
    q.consumed(rest.length);
    const frames = decodeAll(Buffer.from(q.peek()));
    expect(frames.map((f) => [f.opcode, f.payload.length])).toEqual([
      [Opcode.pong, 1],
      [Opcode.text, 200_000],
    ]);
    q.consumed(q.length);
    expect(q.length).toBe(0);
    q.text("again", Opcode.text);
    expect(decodeAll(Buffer.from(q.peek()))[0]?.payload.toString()).toBe("again");
  });

  test("clear forgets everything waiting", () => {
    const q = new FrameQueue();
    q.text("a", Opcode.text);
    q.clear();
    expect(q.length).toBe(0);
    expect(q.peek().length).toBe(0);
  });

  test("two frames of the same text use different masks", () => {
    const q = new FrameQueue();
    q.text("same", Opcode.text);
    q.text("same", Opcode.text);
    const b = q.peek();
    expect(b.subarray(2, 6).equals(b.subarray(12, 16))).toBe(false);
  });
});

describe("maskInPlace", () => {
  test("the word path and the byte path agree at every offset and length", () => {
    const memory = new ArrayBuffer(256);
    const bytes = new Uint8Array(memory);
    const words = new Uint32Array(memory);
    for (let at = 4; at < 12; at++) {
      for (const n of [0, 1, 15, 16, 17, 64, 101]) {
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
        const expected = Buffer.from(bytes);
        maskInPlace(expected, null, at, at + n);
        maskInPlace(bytes, words, at, at + n);
        expect(Buffer.from(bytes).equals(expected)).toBe(true);
      }
    }
  });
});
