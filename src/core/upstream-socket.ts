/**
 * The upstream socket as the link sees it (a port, like those in ports.ts):
 * transport/upstream-batched-socket.ts implements it over Bun sockets, the
 * tests and the simulation with fakes.
 */
import type { SendResult } from "./ports.ts";

export interface UpstreamSocket {
  send(text: string): SendResult;
  close(code: number, reason: string): void;
  terminate(): void;
  /** Bytes written but not yet sent (for a clean shutdown). */
  bufferedAmount?(): number;
  /** Stop / start reading from the server (the server sees TCP backpressure). */
  pause?(): void;
  resume?(): void;
}

export interface UpstreamHandlers {
  onOpen(): void;
  onMessage(text: string): void;
  onClose(code: number, reason: string): void;
  onError(message: string): void;
  /** The socket's send buffer has room again after a "backpressure" send. */
  onDrain(): void;
}

/** Opens a socket to `url`; its events go to `handlers`, after the call has returned. */
export type UpstreamTransport = (url: string, handlers: UpstreamHandlers) => UpstreamSocket;
