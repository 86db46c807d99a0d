/**
 * The batched upstream socket against a real Bun WebSocket server: frames of one turn
 * leave together yet arrive one message each, in order; a busy turn starts writing
 * before its end; a full buffer reports
 * backpressure and then drains; the server's close ends the socket once.
 */
import { expect, test } from "bun:test";
import type { UpstreamHandlers } from "../../src/core/upstream-socket.ts";
import { createBatchedUpstreamTransport } from "../../src/transport/upstream-batched-socket.ts";

function server() {
  const received: string[] = [];
  const waiters: Array<() => void> = [];
  const srv = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req, s) => (s.upgrade(req) ? undefined : new Response("no", { status: 426 })),
    websocket: {
      message(ws, message) {
        received.push(String(message));
        if (message === "close me") ws.close(4000, "asked to");
        for (const w of waiters.splice(0)) w();
      },
    },
  });
  const until = (n: number, timeoutMs = 10_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${received.length} of ${n} frames arrived`)),
        timeoutMs,
      );
      const check = () => {
        if (received.length >= n) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { srv, received, until, url: `ws://127.0.0.1:${srv.port}/ws/daemon` };
}

function events() {
  const log: string[] = [];
  const opened = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<{ code: number; reason: string }>();
  let drains = 0;
  const drained: Array<() => void> = [];
  const handlers: UpstreamHandlers = {
    onOpen: () => opened.resolve(),
    onMessage: (text) => log.push(text),
    onClose: (code, reason) => closed.resolve({ code, reason }),
    onError: (message) => log.push(`error: ${message}`),
    onDrain: () => {
      drains += 1;
      for (const d of drained.splice(0)) d();
    },
  };
  const nextDrain = () => new Promise<void>((resolve) => drained.push(resolve));
  return {
    handlers,
    opened: opened.promise,
    closed: closed.promise,
    log,
    nextDrain,
    drains: () => drains,
  };
}

test("a burst goes out as separate messages, in order, through backpressure and drain", async () => {
  const s = server();
  const e = events();
  // One turn's worth, written at its end: no early write lets the kernel take it as it comes.
  const socket = createBatchedUpstreamTransport({
    highWaterBytes: 16 * 1024,
    earlyWriteBytes: Number.POSITIVE_INFINITY,
  })(s.url, e.handlers);
  await e.opened;
  const frames = Array.from({ length: 5000 }, (_, i) =>
    JSON.stringify({ type: "taskOutput", n: i, pad: "x".repeat(200) }),
  );
  let pressured = 0;
  for (const frame of frames) {
    const result = socket.send(frame);
    expect(result).not.toBe("dropped");
    if (result === "backpressure") pressured += 1;
  }
  expect(pressured).toBeGreaterThan(0);
  await e.nextDrain();
  await s.until(frames.length);
  expect(s.received).toEqual(frames);
  expect(socket.bufferedAmount?.()).toBe(0);
  socket.close(1000, "done");
  s.srv.stop(true);
});

test("a turn that queues earlyWriteBytes writes them at once; what follows waits for the end of the turn", async () => {
  const s = server();
  const e = events();
  // The end of the turn comes only when the test says so.
  const endOfTurn: Array<() => void> = [];
  const socket = createBatchedUpstreamTransport({
    earlyWriteBytes: 4096,
    schedule: (fn) => endOfTurn.push(fn),
  })(s.url, e.handlers);
  await e.opened;
  const frame = (i: number) => JSON.stringify({ type: "taskOutput", n: i, pad: "x".repeat(1000) });
  // Four frames of a little over 1 KiB each: the fourth takes the queue past 4 KiB.
  const early = [0, 1, 2, 3].map(frame);
  for (const f of early) expect(socket.send(f)).toBe("sent");
  await s.until(early.length);
  expect(s.received).toEqual(early);
  expect(socket.bufferedAmount?.()).toBe(0);
  socket.send(frame(4));
  expect(socket.bufferedAmount?.()).toBeGreaterThan(0);
  for (const fn of endOfTurn.splice(0)) fn();
  await s.until(5);
  expect(s.received).toEqual([...early, frame(4)]);
  socket.close(1000, "done");
  s.srv.stop(true);
});

test("the server's close frame ends the socket once, with its code", async () => {
  const s = server();
  const e = events();
  const socket = createBatchedUpstreamTransport()(s.url, e.handlers);
  await e.opened;
  socket.send("close me");
  expect(await e.closed).toEqual({ code: 4000, reason: "asked to" });
  expect(socket.send("too late")).toBe("dropped");
  s.srv.stop(true);
});

test("a refused connection reports an error, then a close", async () => {
  const s = server();
  const url = s.url;
  s.srv.stop(true);
  const e = events();
  createBatchedUpstreamTransport()(url, e.handlers);
  expect((await e.closed).code).toBe(1006);
  expect(e.log.some((l) => l.startsWith("error:"))).toBe(true);
});

test("a server that is not a WebSocket server fails the handshake", async () => {
  const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("plain") });
  const e = events();
  createBatchedUpstreamTransport()(`ws://127.0.0.1:${http.port}/ws/daemon`, e.handlers);
  expect((await e.closed).code).toBe(1006);
  expect(e.log.join()).toContain("handshake failed");
  http.stop(true);
});
