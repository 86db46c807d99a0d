/**
 * Adapts Bun's ServerWebSocket to the core's DaemonConnection. Keyed by the
 * id we put in ws.data at upgrade, never by the per-event wrapper.
 */
import type { ServerWebSocket } from "bun";
import type { DaemonConnection, SendResult } from "../core/ports.ts";

export interface SocketData {
  id: string;
  remoteAddress: string;
  conn?: DaemonConnection;
}

export class BunDaemonConnection implements DaemonConnection {
  constructor(private readonly ws: ServerWebSocket<SocketData>) {}

  get id(): string {
    return this.ws.data.id;
  }

  get remoteAddress(): string {
    return this.ws.data.remoteAddress;
  }

  send(text: string): SendResult {
    // Bun: bytes written, -1 queued under backpressure, 0 dropped (closed or over the limit).
    const n = this.ws.send(text);
    return n > 0 ? "sent" : n === -1 ? "backpressure" : "dropped";
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }
}
