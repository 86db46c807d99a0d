/**
 * Opens the byte stream a WebSocket client speaks over: TCP or TLS to the
 * server, directly or through an HTTP proxy's CONNECT tunnel (RFC 9110
 * §9.3.6). Through a proxy, TLS to the server runs inside the tunnel
 * (upgradeTLS), checked against the configured CA with SNI = the server's
 * host, so the proxy sees only ciphertext for wss://. A proxy that refuses,
 * drops the tunnel or cannot be reached is an ordinary failure of the
 * connection: `failed` then `closed`, and the link backs off.
 *
 * Proxy credentials come from the proxy URL and go only into the
 * Proxy-Authorization header: messages name the proxy by host and port alone.
 */
import type { Socket, SocketHandler } from "bun";
import { readResponseHead } from "./ws-client-codec.ts";

export interface DialOptions {
  /** PEM text of an extra CA to trust for wss:// (a private CA). */
  ca: string | null;
  /** The HTTP proxy to tunnel through, or null to connect directly. */
  proxy: URL | null;
}

export interface DialEvents {
  /** The stream is ready for the WebSocket handshake. */
  ready(socket: Socket, early: Buffer): void;
  data(chunk: Buffer): void;
  drain(): void;
  /** The stream ended; `why` for a log line. Always the last event. */
  closed(why: string): void;
  failed(message: string): void;
}

/** Square brackets off an IPv6 literal: Bun.connect wants the bare address. */
const bare = (hostname: string): string => hostname.replace(/^\[(.*)\]$/, "$1");

/** The CONNECT request for `target`, with Basic credentials when the proxy URL has them. */
export function connectRequest(target: URL, proxy: URL): string {
  const authority = `${target.hostname}:${portOf(target)}`;
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
  if (proxy.username || proxy.password) {
    const user = decodeURIComponent(proxy.username);
    const pass = decodeURIComponent(proxy.password);
    lines.push(`Proxy-Authorization: Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`);
  }
  return `${lines.join("\r\n")}\r\n\r\n`;
}

function portOf(url: URL): number {
  if (url.port) return Number(url.port);
  return url.protocol === "wss:" || url.protocol === "https:" ? 443 : 80;
}

type Stage = "proxy" | "tls" | "open" | "closed";

/** One connection attempt; the events stop after `closed`. */
export function dial(target: URL, opts: DialOptions, events: DialEvents): { terminate(): void } {
  const dialer = new Dialer(target, opts, events);
  dialer.start();
  return dialer;
}

class Dialer {
  private stage: Stage;
  /** The proxy's answer so far (bounded by MAX_HEAD_BYTES in readResponseHead). */
  private answer: Buffer[] = [];
  private readonly secure: boolean;
  private readonly host: string;
  /** The socket in use: the first, then the TLS one inside the tunnel. */
  private socket: Socket | null = null;
  private terminated = false;
  /** TLS runs inside the tunnel: the first socket's own events are the TLS socket's business. */
  private upgraded = false;

  constructor(
    private readonly target: URL,
    private readonly opts: DialOptions,
    private readonly events: DialEvents,
  ) {
    this.secure = target.protocol === "wss:";
    this.host = bare(target.hostname);
    this.stage = opts.proxy ? "proxy" : this.secure ? "tls" : "open";
  }

  start(): void {
    const proxy = this.opts.proxy;
    const direct = proxy === null;
    Bun.connect({
      hostname: direct ? this.host : bare(proxy.hostname),
      port: direct ? portOf(this.target) : portOf(proxy),
      ...(direct && this.secure ? { tls: this.tlsOptions() } : {}),
      socket: this.handlers(),
    }).catch((err: Error) => this.fail(this.cannotReach(err)));
  }

  private tlsOptions() {
    return this.opts.ca ? { ca: this.opts.ca, serverName: this.host } : { serverName: this.host };
  }

  private cannotReach(err: Error): string {
    const proxy = this.opts.proxy;
    return proxy ? `cannot reach proxy ${proxy.host}: ${err.message}` : err.message;
  }

  /** Handlers of the first socket (to the server, or to the proxy). */
  private handlers(): SocketHandler<undefined, "buffer"> {
    return {
      binaryType: "buffer",
      open: (s) => {
        this.socket = s;
        if (this.terminated) {
          s.terminate();
          return;
        }
        if (this.stage === "proxy") s.write(connectRequest(this.target, this.opts.proxy as URL));
        else if (this.stage === "open") this.events.ready(s, Buffer.alloc(0));
      },
      handshake: (s, authorized, error) => this.tlsDone(s, authorized, error),
      data: (s, chunk) => {
        // After upgradeTLS this socket still sees the tunnel's ciphertext: the TLS socket reads it.
        if (this.upgraded) return;
        if (this.stage === "proxy") this.proxyAnswer(s, chunk);
        else if (this.stage === "open") this.events.data(chunk);
      },
      drain: () => {
        if (this.stage === "open" && !this.upgraded) this.events.drain();
      },
      close: () => this.close(),
      end: () => this.close(),
      error: (_s, err) => this.fail(err.message),
      connectError: (_s, err) => this.fail(this.cannotReach(err)),
    };
  }

  private tlsDone(s: Socket, authorized: boolean, error: Error | null): void {
    if (this.stage !== "tls") return;
    if (!authorized) {
      this.fail(`TLS to ${this.target.host}: ${error?.message ?? "not authorized"}`);
      s.terminate();
      return;
    }
    this.stage = "open";
    this.events.ready(s, Buffer.alloc(0));
  }

  private proxyAnswer(s: Socket, chunk: Buffer): void {
    this.answer.push(chunk);
    const head = readResponseHead(Buffer.concat(this.answer));
    if (head === null) return;
    this.answer = [];
    const proxy = (this.opts.proxy as URL).host;
    if (!head.ok || head.value.status < 200 || head.value.status > 299) {
      const what = head.ok ? `"${head.value.statusLine}"` : head.error;
      this.fail(`proxy ${proxy} refused the tunnel to ${this.target.host}: ${what}`);
      s.terminate();
      return;
    }
    const early = head.value.rest;
    if (!this.secure) {
      this.stage = "open";
      this.events.ready(s, early);
      return;
    }
    // A TLS server speaks only after the ClientHello: bytes here are not from it.
    if (early.length > 0) {
      this.fail(`proxy ${proxy} sent data after its answer to CONNECT`);
      s.terminate();
      return;
    }
    this.stage = "tls";
    this.upgraded = true;
    const [, tls] = s.upgradeTLS({ tls: this.tlsOptions(), socket: this.tunnelHandlers() });
    this.socket = tls;
  }

  /** Ends the attempt at once, at any stage (the link's connect timeout). */
  terminate(): void {
    this.terminated = true;
    this.socket?.terminate();
    this.close();
  }

  /** Handlers of the TLS socket inside the tunnel. */
  private tunnelHandlers(): SocketHandler<undefined, "buffer"> {
    return {
      binaryType: "buffer",
      handshake: (t, authorized, error) => this.tlsDone(t, authorized, error),
      data: (_t, chunk) => {
        if (this.stage === "open") this.events.data(chunk);
      },
      drain: () => {
        if (this.stage === "open") this.events.drain();
      },
      close: () => this.close(),
      end: () => this.close(),
      error: (_t, err) => this.fail(err.message),
    };
  }

  private fail(message: string): void {
    if (this.stage === "closed") return;
    this.events.failed(message);
    this.close();
  }

  private close(): void {
    if (this.stage === "closed") return;
    const stage = this.stage;
    this.stage = "closed";
    this.events.closed(
      stage === "proxy"
        ? `proxy ${(this.opts.proxy as URL).host} closed the connection before the tunnel opened`
        : stage === "tls"
          ? "connection closed during the TLS handshake"
          : "connection lost",
    );
  }
}
