/**
 * One port for everything: /ws/daemon is terminated on Bun.serve directly
 * (Elysia's .ws() would rewrite text frames, and forwarding must be
 * byte-identical), every other request goes to the HTTP app.
 *
 * Whatever a client sends, the answer is JSON: a request the relay cannot read
 * is a 400 that quotes nothing of it, and a bug is a 500 reported through the
 * relay's logger (which masks secrets), never Bun's error page or a stack on
 * stderr.
 */
import type { ServeOptions, Server } from "bun";
import type { Relay } from "../core/relay.ts";
import { BunDaemonConnection, type SocketData } from "./daemon-socket.ts";

export interface TlsFiles {
  cert: string;
  key: string;
}

export interface SocketServerOptions {
  host: string;
  port: number;
  maxFrameBytes: number;
  tls?: TlsFiles | null;
  relay: Relay;
  fetch(req: Request, remoteAddress: string): Response | Promise<Response>;
  /** Called with errors thrown by the core while handling a frame or a request (bugs). */
  onBug(where: string, err: unknown): void;

  newId(): string;
}

const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/**
 * Bun builds `req.url` from the Host header without checking it: an HTTP/1.0
 * request without Host, an empty Host or one such as `a b` leaves it relative
 * or unparseable. RFC 9112 §3.2 answers a missing or invalid Host with 400.
 */
const NO_VALID_HOST = "bad request: the request needs a valid Host header";

/**
 * Elysia reads the path from the first "/" at or after this index of `req.url`
 * (elysia 1.4 `dynamic-handle`), so it assumes an authority of 4 characters or
 * more (3 over https). With `Host: x`, `http://x/health/` would route to `/`
 * while the access guard, which parses the URL, sees the open `/health/`.
 * Such a Host is refused rather than misrouted (/ws/daemon, matched above on
 * the parsed URL, is not affected).
 */
const ROUTER_PATH_SEARCH_FROM = 11;
const HOST_TOO_SHORT = "bad request: the Host header is too short";

/** The relay's listener: one port, whose certificate can be replaced while it runs. */
export interface SocketServer {
  readonly port: number;
  /**
   * New connections get `tls` from now on; open ones keep theirs. Bun cannot
   * change the certificate of a listening server (oven-sh/bun#43815:
   * `reload()` ignores `tls`), so the listener is replaced: the old one stops
   * accepting (its connections stay open, served as before) and a new one
   * binds the same port, within a millisecond; a connection attempt in that
   * instant may be refused, and clients retry. If the new one cannot listen,
   * the old certificate is put back and this throws.
   */
  replaceTls(tls: TlsFiles): void;
  /** Stops every listener; `closeActiveConnections` ends open connections too. */
  stop(closeActiveConnections?: boolean): Promise<void>;
  [Symbol.dispose](): void;
}

export function startSocketServer(opts: SocketServerOptions): SocketServer {
  const listen = (tls: TlsFiles | null, port: number): Server<SocketData> =>
    Bun.serve<SocketData>(serveOptions(opts, tls, port));
  let current = listen(opts.tls ?? null, opts.port);
  let tls = opts.tls ?? null;
  const port = current.port as number;
  /** Replaced listeners: no longer accepting, still serving the connections they took. */
  const retired: Server<SocketData>[] = [];
  const stopAll = (close: boolean) =>
    Promise.all([current, ...retired].map((server) => server.stop(close))).then(() => {});
  return {
    port,
    replaceTls(next) {
      const old = current;
      old.stop(false);
      retired.push(old);
      try {
        current = listen(next, port);
        tls = next;
      } catch (err) {
        current = listen(tls, port);
        throw err;
      }
    },
    stop: stopAll,
    [Symbol.dispose]() {
      void stopAll(true);
    },
  };
}

function serveOptions(
  opts: SocketServerOptions,
  tls: TlsFiles | null,
  port: number,
): ServeOptions<SocketData> {
  const { relay } = opts;
  const guard = (where: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      // A bug triggered by one daemon's frame must not take the relay or other daemons down.
      opts.onBug(where, err);
    }
  };
  return {
    hostname: opts.host,
    port,
    reusePort: false,
    // Never Bun's development error page: it shows source lines, paths and the request.
    development: false,
    ...(tls ? { tls } : {}),
    fetch(req, server) {
      const url = URL.parse(req.url);
      if (url === null) return json(400, { error: NO_VALID_HOST });
      const remoteAddress = server.requestIP(req)?.address ?? "unknown";
      if (url.pathname === "/ws/daemon") {
        if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
          return json(426, { error: "WebSocket upgrade required at /ws/daemon" });
        }
        const refusal = relay.connectionRefusal(remoteAddress);
        if (refusal !== null) return json(503, { error: refusal });
        if (server.upgrade(req, { data: { id: opts.newId(), remoteAddress } })) return undefined;
        return json(400, { error: "WebSocket upgrade failed" });
      }
      if (req.url.indexOf("/", url.protocol.length + 2) < ROUTER_PATH_SEARCH_FROM) {
        return json(400, { error: HOST_TOO_SHORT });
      }
      return opts.fetch(req, remoteAddress);
    },
    // A throw or a rejection in fetch above: without this, Bun writes the stack (and the
    // request URL, tokens included) to stderr, outside the logger that masks secrets.
    error(err) {
      try {
        opts.onBug("http request", err);
      } catch {
        // Reporting must not turn a 500 into Bun's own error answer.
      }
      return json(500, { error: "Internal error" });
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
  };
}
