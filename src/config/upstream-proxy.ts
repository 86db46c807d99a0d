/**
 * Which HTTP proxy, if any, the upstream link tunnels through to a server,
 * from the settings that say so: MAKIMA_RELAY_UPSTREAM_PROXY for every
 * server address; otherwise HTTPS_PROXY for wss://, HTTP_PROXY for ws://,
 * except for loopback addresses and the hosts NO_PROXY names, as curl reads
 * them. Decided once from the configuration; the transport only asks.
 */
import type { Config } from "./config.ts";

export type ProxySettings = Pick<Config, "upstreamProxy" | "httpsProxy" | "httpProxy" | "noProxy">;

/** The proxy for a server URL, or null to connect directly. */
export type ProxyChoice = (server: URL) => URL | null;

export function upstreamProxyFor(settings: ProxySettings): ProxyChoice {
  const override = settings.upstreamProxy ? new URL(settings.upstreamProxy) : null;
  const https = settings.httpsProxy ? new URL(settings.httpsProxy) : null;
  const http = settings.httpProxy ? new URL(settings.httpProxy) : null;
  const bypass = settings.noProxy.map(parseEntry);
  return (server) => {
    if (override) return override;
    const proxy = server.protocol === "wss:" || server.protocol === "https:" ? https : http;
    if (!proxy) return null;
    const host = bareHost(server.hostname);
    if (isLoopback(host)) return null;
    const port = Number(server.port) || (server.protocol === "wss:" ? 443 : 80);
    return bypass.some((entry) => entry.matches(host, port)) ? null : proxy;
  };
}

const bareHost = (hostname: string): string =>
  hostname
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "")
    .toLowerCase();

/** Never through a proxy unless MAKIMA_RELAY_UPSTREAM_PROXY says so: the proxy could not reach it. */
function isLoopback(host: string): boolean {
  return (
    host === "localhost" ||
    host.endsWith(".localhost") ||
    /^127\.\d+\.\d+\.\d+$/.test(host) ||
    host === "::1" ||
    host === "0:0:0:0:0:0:0:1"
  );
}

interface Entry {
  matches(host: string, port: number): boolean;
}

/**
 * One NO_PROXY entry: `*` (every host), a host or domain (it and every name
 * under it; a leading dot changes nothing), an IP address, each optionally
 * with `:port` (then only that port). IPv6 addresses with a port are bracketed.
 */
function parseEntry(raw: string): Entry {
  const text = raw.trim().toLowerCase();
  if (text === "*") return { matches: () => true };
  const withPort = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const name = bareHost(withPort ? (withPort[1] as string) : text).replace(/^\*?\./, "");
  const port = withPort ? Number(withPort[2]) : null;
  return {
    matches: (host, p) =>
      (port === null || port === p) && (host === name || host.endsWith(`.${name}`)),
  };
}
