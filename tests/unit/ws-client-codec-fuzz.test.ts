/**
 * Fuzzing the server-frame reader with a seeded PRNG (a failure names its
 * seed, which replays it): valid streams of messages, fragments, pings, pongs
 * and a close decode to what was sent however the bytes are split; corrupted
 * or random streams never throw out of the reader, end each push (no hang),
 * stop at the first error, and never hold more than one message and a frame
 * header's worth of bytes.
 */
import { describe, expect, test } from "bun:test";
import { FrameReader, type ServerEvent } from "../../src/transport/ws-frame-reader.ts";

const MAX = 4096;

/** mulberry32: small, fast and good enough to drive a fuzzer. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0, n]) : Buffer.from([0, 126, n >> 8, n & 0xff]);
  head[0] = (fin ? 0x80 : 0) | opcode;
  return Buffer.concat([head, payload]);
}

const ALPHABET = ["a", "Z", "0", " ", "{", '"', "é", "✓", "😀", "\u0000"];

function randomText(rand: (n: number) => number, maxChars: number): string {
  let s = "";
  const n = rand(maxChars + 1);
  for (let i = 0; i < n; i++) s += ALPHABET[rand(ALPHABET.length)];
  return s;
}

/** A valid stream and the events it must decode to. */
function validStream(rand: (n: number) => number): { bytes: Buffer; events: ServerEvent[] } {
  const frames: Buffer[] = [];
  const events: ServerEvent[] = [];
  for (let items = 1 + rand(8); items > 0; items--) {
    const kind = rand(10);
    if (kind < 6) {
      const text = randomText(rand, 900);
      const body = Buffer.from(text);
      // Cut into 1..4 fragments, a ping sometimes between two of them.
      const cuts = [0, ...Array.from({ length: rand(4) }, () => rand(body.length + 1))].sort(
        (x, y) => x - y,
      );
      cuts.push(body.length);
      for (let i = 0; i + 1 < cuts.length; i++) {
        const last = i + 2 === cuts.length;
        frames.push(serverFrame(i === 0 ? 1 : 0, body.subarray(cuts[i], cuts[i + 1]), last));
        if (!last && rand(3) === 0) {
          const data = Buffer.from(randomText(rand, 30));
          frames.push(serverFrame(9, data));
          events.push({ kind: "ping", payload: data });
        }
      }
      events.push({ kind: "message", text });
    } else if (kind < 8) {
      const data = Buffer.alloc(rand(126), rand(256));
      frames.push(serverFrame(9, data));
      events.push({ kind: "ping", payload: data });
    } else {
      frames.push(serverFrame(10, Buffer.alloc(rand(126))));
    }
  }
  if (rand(2) === 0) {
    const reason = randomText(rand, 20).slice(0, 30);
    const code = [1000, 1001, 1011, 3000, 4999][rand(5)] as number;
    const body = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]);
    if (body.length <= 125) {
      frames.push(serverFrame(8, body));
      events.push({ kind: "close", code, reason });
    }
  }
  return { bytes: Buffer.concat(frames), events };
}

/** Pushes `bytes` in random pieces, checking the reader's bounds after each push. */
function decodeInPieces(bytes: Buffer, rand: (n: number) => number): ServerEvent[] {
  const reader = new FrameReader(MAX);
  const events: ServerEvent[] = [];
  let at = 0;
  while (at < bytes.length) {
    const n = 1 + rand(Math.min(bytes.length - at, rand(4) === 0 ? 4000 : 40));
    // Each piece is its own buffer, as a socket's chunks are.
    events.push(...reader.push(Buffer.from(bytes.subarray(at, at + n))));
    at += n;
    expect(reader.bufferedBytes()).toBeLessThan(MAX + 14);
  }
  return events;
}

function corrupt(bytes: Buffer, rand: (n: number) => number): Buffer {
  let b = Buffer.from(bytes);
  for (let m = 1 + rand(5); m > 0; m--) {
    const at = rand(b.length + 1);
    switch (rand(5)) {
      case 0:
        if (b.length > 0) b[Math.min(at, b.length - 1)] = rand(256);
        break;
      case 1:
        b = Buffer.concat([
          b.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + rand(16) }, () => rand(256))),
          b.subarray(at),
        ]);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rand(32))]);
        break;
      case 3:
        b = b.subarray(0, at);
        break;
      default:
        // A header claiming a huge length, or the largest 16-bit one.
        b = Buffer.concat([
          b.subarray(0, at),
          Buffer.from(rand(2) ? [0x81, 127, 0, 0, 0, 1, 0, 0, 0, 0] : [0x81, 126, 0xff, 0xff]),
          b.subarray(at),
        ]);
    }
  }
  return b;
}

describe("FrameReader fuzz", () => {
  test("3,000 valid streams decode to what was sent, however they are split", () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const rand = prng(seed);
      const { bytes, events } = validStream(rand);
      const decoded = decodeInPieces(bytes, rand);
      if (!Bun.deepEquals(decoded, events))
        expect({ seed, decoded }).toEqual({ seed, decoded: events });
    }
  });

  test("3,000 corrupted or random streams never throw, hang, outgrow the bound or go on after an error", () => {
    const started = performance.now();
    for (let seed = 1; seed <= 3000; seed++) {
      const rand = prng(seed * 7919);
      const bytes =
        seed % 4 === 0
          ? Buffer.from(Array.from({ length: rand(3000) }, () => rand(256)))
          : corrupt(validStream(rand).bytes, rand);
      let events: ServerEvent[] = [];
      try {
        events = decodeInPieces(bytes, rand);
      } catch (err) {
        throw new Error(`seed ${seed}: ${(err as Error).message}`);
      }
      const end = events.findIndex((e) => e.kind === "error" || e.kind === "close");
      if (end >= 0 && end !== events.length - 1)
        throw new Error(`seed ${seed}: events after the end: ${JSON.stringify(events.slice(end))}`);
      const error = events.at(-1);
      if (error?.kind === "error") expect([1002, 1007, 1009]).toContain(error.code);
    }
    // Every push ends: a stream that hung would not finish at all; this bounds it loosely.
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});
