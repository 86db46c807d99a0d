/**
 * The dashboard's Server-Sent Events stream (text/event-stream, WHATWG HTML
 * "Server-sent events"): a snapshot at once, then every `intervalMs` the
 * snapshot is rebuilt and sent only if its JSON changed. A comment line goes
 * out when nothing else did for `keepAliveMs`, because Bun.serve closes a
 * connection that stays silent for its idleTimeout (10 s by default).
 */

export interface SnapshotStreamOptions<T> {
  build(): T;
  now(): number;
  intervalMs: number;
  keepAliveMs: number;
  /** A snapshot that failed to build (a bug or a failing store); the stream goes on. */
  onError?(error: unknown): void;
}

/** How long the browser waits before reconnecting after the stream drops (the SSE `retry` field). */
const RETRY_MS = 1000;

export function snapshotStream<T>(opts: SnapshotStreamOptions<T>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  let last = "";
  let lastWrite = 0;
  const stop = (): void => {
    clearInterval(timer);
    timer = undefined;
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const write = (text: string): void => {
        try {
          controller.enqueue(encoder.encode(text));
          lastWrite = opts.now();
        } catch {
          // The client went away and the stream is closed: nothing left to feed.
          stop();
        }
      };
      const tick = (): void => {
        let json: string;
        try {
          json = JSON.stringify(opts.build());
        } catch (error) {
          opts.onError?.(error);
          return;
        }
        if (json !== last) {
          last = json;
          write(`event: snapshot\ndata: {"serverTime":${opts.now()},"snapshot":${json}}\n\n`);
        } else if (opts.now() - lastWrite >= opts.keepAliveMs) {
          write(": keep-alive\n\n");
        }
      };
      write(`retry: ${RETRY_MS}\n\n`);
      tick();
      timer = setInterval(tick, opts.intervalMs);
    },
    cancel: stop,
  });
}
