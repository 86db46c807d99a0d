#!/usr/bin/env bun
/**
 * `bun run bench/send-costs.ts`: the sending side of recommendation 1 in
 * BENCHMARKS.md. It writes the same 256-byte taskOutput frames to a WebSocket
 * server in another process two ways: Bun's client `WebSocket`, one `send`
 * per frame (what the relay's upstream link does; one `sendto` each), and a
 * bare RFC 6455 client over `Bun.connect` that masks a batch of frames into
 * one buffer and writes it once. It prints the sender's CPU per frame for
 * batches of 1, 16 and 256 frames (a batch = the frames one event-loop turn
 * would forward). Fixed counts, each step bounded by a timeout.
 */
import { cpuTimeMs } from "./proc.ts";
import { readLines } from "./relay-process.ts";

const FRAMES = 200_000;
const BATCHES = [1, 16, 256];
const STEP_TIMEOUT_MS = 30_000;
const FRAME = JSON.stringify({ type: "taskOutput", taskId: "t", seq: 1, output: "x".repeat(200) });

/** The receiving process: a Bun WebSocket server that parses and counts every message. */
function receiver(): void {
  let received = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response("upgrade", { status: 426 })),
    websocket: {
      message(_ws, message) {
        JSON.parse(String(message));
        received++;
      },
    },
  });
  console.log(`port ${server.port}`);
  setInterval(() => console.log(`received ${received}`), 20);
}

interface Sender {
  sendBatch(n: number): void;
  buffered(): number;
  close(): void;
}

async function clientSender(port: number): Promise<Sender> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  return {
    sendBatch: (n) => {
      for (let i = 0; i < n; i++) ws.send(FRAME);
    },
    buffered: () => ws.bufferedAmount,
    close: () => ws.close(),
  };
}

/** Client frames must be masked (RFC 6455 §5.3); keys come from a pool of random bytes. */
class Masker {
  #pool = new Uint8Array(4096);
  #at = this.#pool.length;

  frame(payload: Uint8Array): Uint8Array {
    const len = payload.length;
    const head = len < 126 ? 2 : 4;
    const out = new Uint8Array(head + 4 + len);
    out[0] = 0x81; // FIN + text
    if (len < 126) out[1] = 0x80 | len;
    else {
      out[1] = 0x80 | 126;
      out[2] = len >> 8;
      out[3] = len & 0xff;
    }
    if (this.#at + 4 > this.#pool.length) {
      crypto.getRandomValues(this.#pool);
      this.#at = 0;
    }
    const key = this.#pool.subarray(this.#at, this.#at + 4);
    this.#at += 4;
    out.set(key, head);
    for (let i = 0; i < len; i++)
      out[head + 4 + i] = (payload[i] as number) ^ (key[i & 3] as number);
    return out;
  }
}

async function rawSender(port: number): Promise<Sender> {
  const upgraded = Promise.withResolvers<void>();
  let pending: Uint8Array | null = null;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, data) {
        if (data.toString("latin1").startsWith("HTTP/1.1 101")) upgraded.resolve();
      },
      drain(s) {
        if (!pending) return;
        const n = s.write(pending);
        pending = n < pending.length ? pending.subarray(n) : null;
      },
    },
  });
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
  socket.write(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await upgraded.promise;
  const masker = new Masker();
  const payload = new TextEncoder().encode(FRAME);
  return {
    sendBatch: (n) => {
      const frames = Array.from({ length: n }, () => masker.frame(payload));
      const buffer = Buffer.concat(frames);
      if (pending) {
        pending = Buffer.concat([pending, buffer]);
        return;
      }
      const written = socket.write(buffer);
      if (written < buffer.length) pending = buffer.subarray(written);
    },
    buffered: () => pending?.length ?? 0,
    close: () => socket.end(),
  };
}

async function main(): Promise<void> {
  const child = Bun.spawn([process.execPath, import.meta.path, "--receiver"], {
    stdout: "pipe",
    stderr: "inherit",
  });
  let port = 0;
  let received = 0;
  readLines(child.stdout, (line) => {
    if (line.startsWith("port ")) port = Number(line.slice(5));
    if (line.startsWith("received ")) received = Number(line.slice(9));
  }).catch(() => {});
  try {
    const deadline = performance.now() + STEP_TIMEOUT_MS;
    while (port === 0 && performance.now() < deadline) await Bun.sleep(5);
    console.log(
      "| Sender | Frames per write | Sender CPU per frame | Frames/s |\n|---|--:|--:|--:|",
    );
    for (const batch of BATCHES) {
      for (const kind of ["client WebSocket", "Bun.connect + own framing"] as const) {
        const sender =
          kind === "client WebSocket" ? await clientSender(port) : await rawSender(port);
        const base = received;
        const cpu0 = cpuTimeMs(process.pid);
        const t0 = performance.now();
        const stop = t0 + STEP_TIMEOUT_MS;
        for (let sent = 0; sent < FRAMES && performance.now() < stop; sent += batch) {
          sender.sendBatch(batch);
          // Yield now and then so the socket drains and the sender cannot buffer without bound.
          if (sender.buffered() > 1 << 20 || sent % 4096 < batch) {
            await new Promise((resolve) => setImmediate(resolve));
          }
        }
        while (received - base < FRAMES && performance.now() < stop) await Bun.sleep(2);
        const cpuUs = ((cpuTimeMs(process.pid) - cpu0) * 1000) / FRAMES;
        const rate = ((received - base) * 1000) / (performance.now() - t0);
        const shown = kind === "client WebSocket" ? `${kind}, one send per frame` : kind;
        console.log(
          `| ${shown} | ${batch} | ${cpuUs.toFixed(2)} µs | ${Math.round(rate).toLocaleString("en-US")} |`,
        );
        sender.close();
      }
    }
  } finally {
    child.kill();
  }
}

if (process.argv[2] === "--receiver") receiver();
else await main();
