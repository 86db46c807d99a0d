/**
 * The upstream link's socket (the default): Bun's WebSocket client behind the
 * core's UpstreamSocket. The client has no send result and no drain event, so
 * backpressure is read from bufferedAmount and its end is polled for. Each
 * frame is its own write; MAKIMA_RELAY_UPSTREAM_BATCH_WRITES switches to
 * upstream-batched-socket.ts, which writes a turn's frames together.
 */
import type { SendResult } from "../core/ports.ts";
import type { UpstreamHandlers, UpstreamSocket, UpstreamTransport } from "../core/upstream-link.ts";

export interface WebSocketTransportOptions {
  /** PEM text of an extra CA to trust (private CA for wss://). */
  ca?: string | null;
  /** Above this many buffered bytes a send reports backpressure. */
  highWaterBytes?: number;
  drainPollMs?: number;
}

export function createWebSocketUpstreamTransport(
  opts: WebSocketTransportOptions = {},
): UpstreamTransport {
  const highWater = opts.highWaterBytes ?? 4 * 1024 * 1024;
  const pollMs = opts.drainPollMs ?? 2;
  return (url: string, handlers: UpstreamHandlers): UpstreamSocket => {
    const ws = opts.ca ? new WebSocket(url, { tls: { ca: opts.ca } }) : new WebSocket(url);
    let drainTimer: ReturnType<typeof setInterval> | null = null;
    const stopPolling = (): void => {
      if (drainTimer) clearInterval(drainTimer);
      drainTimer = null;
    };
    ws.onopen = () => handlers.onOpen();
    ws.onmessage = (ev: MessageEvent) => {
      const data = ev.data;
      handlers.onMessage(
        typeof data === "string" ? data : Buffer.from(data as ArrayBuffer).toString("utf8"),
      );
    };
    ws.onerror = (ev: Event) => handlers.onError((ev as ErrorEvent).message || "socket error");
    ws.onclose = (ev: CloseEvent) => {
      stopPolling();
      handlers.onClose(ev.code, ev.reason);
    };
    return {
      send(text: string): SendResult {
        if (ws.readyState !== WebSocket.OPEN) return "dropped";
        ws.send(text);
        if (ws.bufferedAmount <= highWater) return "sent";
        if (!drainTimer) {
          drainTimer = setInterval(() => {
            if (ws.bufferedAmount > highWater / 2) return;
            stopPolling();
            handlers.onDrain();
          }, pollMs);
        }
        return "backpressure";
      },
      close(code, reason) {
        stopPolling();
        ws.close(code, reason);
      },
      bufferedAmount: () => ws.bufferedAmount,
      pause: () => ws.pause(),
      resume: () => ws.resume(),
      terminate() {
        stopPolling();
        ws.terminate();
      },
    };
  };
}
