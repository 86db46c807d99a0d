/**
 * One port for everything: /ws/daemon is terminated on Bun.serve directly
 * (Elysia's .ws() would rewrite text frames, and forwarding must be
 * byte-identical), every other request goes to the HTTP app.
 */
import type { Server } from "bun";
import type { Relay } from "../core/relay.ts";
import { BunDaemonConnection, type SocketData } from "./daemon-socket.ts";

export interface SocketServerOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  tls?: { cert: string; key: string } | null;
  relay: Relay;
  fetch(req: Request, remoteAddress: string): Response | Promise<Response>;
  /** Called with errors thrown by the core while handling a frame (bugs). */
  onBug(where: string, err: unknown): void;

  newId(): string;
}

const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

export function startSocketServer(opts: SocketServerOptions): Server<SocketData> {
  const { relay } = opts;
  const guard = (where: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      // A bug triggered by one daemon's frame must not take the relay or other daemons down.
      opts.onBug(where, err);
    }
  };
  return Bun.serve<SocketData>({
    hostname: opts.host,
    port: opts.port,
    reusePort: false,
    ...(opts.tls ? { tls: opts.tls } : {}),
    fetch(req, server) {
      const remoteAddress = server.requestIP(req)?.address ?? "unknown";
      const url = new URL(req.url);
      if (url.pathname === "/ws/daemon") {
        if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
          return json(426, { error: "WebSocket upgrade required at /ws/daemon" });
        }
        const refusal = relay.connectionRefusal();
        if (refusal !== null) return json(503, { error: refusal });
        if (server.upgrade(req, { data: { id: opts.newId(), remoteAddress } })) return undefined;
        return json(400, { error: "WebSocket upgrade failed" });
      }
      return opts.fetch(req, remoteAddress);
    },
    websocket: {
      maxPayloadLength: opts.maxFrameBytes,
      // Liveness is the relay's own (daemon timeout); Bun's idle timer only catches dead TCP.
      idleTimeout: 0,
      sendPings: true,
      open(ws) {
        const conn = new BunDaemonConnection(ws);
        ws.data.conn = conn;
        guard("open", () => relay.daemonOpened(conn));
      },
      message(ws, message) {
        const conn = ws.data.conn;
        if (!conn) return;
        if (typeof message === "string") guard("message", () => relay.daemonMessage(conn, message));
        else guard("message", () => relay.daemonBinary(conn));
      },
      close(ws, code, reason) {
        const conn = ws.data.conn;
        if (conn) guard("close", () => relay.daemonClosed(conn, code, reason));
      },
      drain(ws) {
        const conn = ws.data.conn;
        if (conn) guard("drain", () => relay.daemonDrained(conn));
      },
    },
  });
}
