/**
 * The client's outgoing bytes (RFC 6455), with no I/O: masked frames are
 * written straight into one byte queue, text encoded in place and masked in
 * place, and the socket writes from it what the kernel takes. Per frame there
 * is no buffer of its own, no copy into a turn's batch and no concatenation
 * of what waits for drain: a 16 KiB frame is encoded once and masked once,
 * four bytes at a time.
 */

/** Queue capacity to start with, and to shrink back to once a large burst has left. */
const INITIAL_BYTES = 64 * 1024;

/** Random masking keys, drawn in bulk: one getRandomValues call per 1,024 frames. */
class MaskPool {
  private readonly pool = new Uint8Array(4096);
  private at = this.pool.length;

  /** Writes the next key into `into` at `offset`. */
  writeNext(into: Uint8Array, offset: number): void {
    if (this.at >= this.pool.length) {
      crypto.getRandomValues(this.pool);
      this.at = 0;
    }
    const p = this.pool;
    const a = this.at;
    into[offset] = p[a] as number;
    into[offset + 1] = p[a + 1] as number;
    into[offset + 2] = p[a + 2] as number;
    into[offset + 3] = p[a + 3] as number;
    this.at = a + 4;
  }
}

export const masks = new MaskPool();

/** Header bytes (before the mask) for a payload of n bytes: the shortest form, as §5.2 requires. */
export const headerBytes = (n: number): number => (n < 126 ? 2 : n < 65_536 ? 4 : 10);

/**
 * The payload's byte count fixes the header size; the text's length in
 * UTF-16 units bounds the count (at least one byte a unit, at most three),
 * which settles the size without counting for most frames.
 */
function textHeaderBytes(text: string): number {
  const units = text.length;
  if (units * 3 < 126) return 2;
  if (units >= 65_536) return 10;
  if (units >= 126 && units * 3 < 65_536) return 4;
  return headerBytes(Buffer.byteLength(text));
}

/** Writes FIN, the opcode and the masked length of n payload bytes at `at` (header bytes long). */
function writeHeader(buf: Buffer, at: number, header: number, opcode: number, n: number): void {
  buf[at] = 0x80 | opcode;
  if (header === 2) {
    buf[at + 1] = 0x80 | n;
  } else if (header === 4) {
    buf[at + 1] = 0x80 | 126;
    buf[at + 2] = n >>> 8;
    buf[at + 3] = n & 0xff;
  } else {
    buf[at + 1] = 0x80 | 127;
    buf.writeBigUInt64BE(BigInt(n), at + 2);
  }
}

const keyBytes = new Uint8Array(4);
const keyWord = new Uint32Array(keyBytes.buffer);

/**
 * Client frames are masked (§5.3): XORs bytes [at, end) with the key in the four
 * bytes before `at`. `words` views the same memory from offset 0 (4-aligned):
 * the aligned middle goes a word at a time with the key rotated to match.
 */
export function maskInPlace(
  buf: Uint8Array,
  words: Uint32Array | null,
  at: number,
  end: number,
): void {
  const k0 = buf[at - 4] as number;
  const k1 = buf[at - 3] as number;
  const k2 = buf[at - 2] as number;
  const k3 = buf[at - 1] as number;
  let i = at;
  if (words !== null && end - at >= 16) {
    // Up to the first aligned byte one at a time, then whole words.
    for (; (i & 3) !== 0; i++)
      buf[i] = (buf[i] as number) ^ (buf[at - 4 + ((i - at) & 3)] as number);
    const r = (i - at) & 3;
    keyBytes[0] = buf[at - 4 + r] as number;
    keyBytes[1] = buf[at - 4 + ((r + 1) & 3)] as number;
    keyBytes[2] = buf[at - 4 + ((r + 2) & 3)] as number;
    keyBytes[3] = buf[at - 4 + ((r + 3) & 3)] as number;
    const key = keyWord[0] as number;
    const last = end >>> 2;
    for (let w = i >>> 2; w < last; w++) words[w] = (words[w] as number) ^ key;
    i = last << 2;
  }
  for (; i < end; i++) {
    const j = (i - at) & 3;
    buf[i] = (buf[i] as number) ^ (j === 0 ? k0 : j === 1 ? k1 : j === 2 ? k2 : k3);
  }
}

/**
 * Bytes waiting to be written, in order: [start, end) of one buffer. Frames
 * are appended at the end; the socket takes from the start.
 */
export class FrameQueue {
  private buf = Buffer.alloc(0);
  private words: Uint32Array | null = null;
  private start = 0;
  private end = 0;

  /**
   * `keepBytes`: a buffer larger than this is given up once it empties (an
   * unusually large frame or backlog); up to it, it is kept, so that a
   * steady stream does not reallocate every turn.
   */
  constructor(private readonly keepBytes = 2 * 1024 * 1024) {
    this.allocate(INITIAL_BYTES);
  }

  /** Bytes waiting. */
  get length(): number {
    return this.end - this.start;
  }

  /** Appends one masked text frame of `text`, encoded to UTF-8 in place. */
  text(text: string, opcode: number): void {
    const header = textHeaderBytes(text);
    // At most three bytes a UTF-16 unit: room for the encoding before it is counted.
    this.reserve(header + 4 + text.length * 3);
    const at = this.end + header + 4;
    const n = this.buf.write(text, at, "utf8");
    const exact = headerBytes(n);
    // Never for a well-formed count; kept so that a miscount cannot put a wrong length on the wire.
    if (exact !== header) this.buf.copy(this.buf, this.end + exact + 4, at, at + n);
    this.seal(exact, opcode, n);
  }

  /** Appends one masked frame of `payload`. */
  frame(opcode: number, payload: Uint8Array): void {
    const n = payload.length;
    const header = headerBytes(n);
    this.reserve(header + 4 + n);
    this.buf.set(payload, this.end + header + 4);
    this.seal(header, opcode, n);
  }

  /** The waiting bytes, as a view (valid until the next append or `consumed`). */
  peek(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }

  /** The first `n` waiting bytes have left. */
  consumed(n: number): void {
    this.start += Math.max(0, Math.min(n, this.end - this.start));
    if (this.start < this.end) return;
    this.start = 0;
    this.end = 0;
    if (this.buf.length > this.keepBytes) this.allocate(INITIAL_BYTES);
  }

  /** Forgets every waiting byte. */
  clear(): void {
    this.consumed(this.end - this.start);
  }

  /** Header, key and mask for the payload of n bytes already in place after the header. */
  private seal(header: number, opcode: number, n: number): void {
    const frameAt = this.end;
    const at = frameAt + header + 4;
    writeHeader(this.buf, frameAt, header, opcode, n);
    masks.writeNext(this.buf, at - 4);
    maskInPlace(this.buf, this.words, at, at + n);
    this.end = at + n;
  }

  /** Room for `bytes` more at the end: what waits moves to the front, or to a larger buffer. */
  private reserve(bytes: number): void {
    if (this.end + bytes <= this.buf.length) return;
    const waiting = this.end - this.start;
    if (waiting + bytes <= this.buf.length) {
      // Buffer#copy allows the regions to overlap.
      this.buf.copy(this.buf, 0, this.start, this.end);
    } else {
      const old = this.buf;
      this.allocate(Math.max(this.buf.length * 2, waiting + bytes));
      old.copy(this.buf, 0, this.start, this.end);
    }
    this.start = 0;
    this.end = waiting;
  }

  /** Its own ArrayBuffer, so that the word view starts 4-aligned at byte 0. */
  private allocate(bytes: number): void {
    const memory = new ArrayBuffer((bytes + 3) & ~3);
    this.buf = Buffer.from(memory);
    this.words = new Uint32Array(memory);
  }
}
