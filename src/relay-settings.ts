/**
 * What each part of the relay is built with, read off the config: the
 * composition root (relay-server.ts) hands these to the constructors, and
 * logs the effective settings once (never a secret).
 */
import { randomUUID } from "node:crypto";
import { type Config, upstreamProblem } from "./config/config.ts";
import { upstreamProxyFor } from "./config/upstream-proxy.ts";
import { createKeyCheck } from "./core/key-check.ts";
import type { RelayOptions } from "./core/relay.ts";
import type { Upstream, UpstreamOptions } from "./core/upstream.ts";
import type { Logger } from "./log/logger.ts";
import { redactUrl } from "./protocol/url.ts";

export function upstreamOptions(config: Config, machineId: string): UpstreamOptions {
  return {
    url: config.serverUrl,
    unconfiguredReason: upstreamProblem(config),
    baseMs: config.reconnectBaseMs,
    maxMs: config.reconnectMaxMs,
    maxReconnects: config.maxReconnects,
    connectTimeoutMs: config.connectTimeoutMs,
    heartbeatMs: config.heartbeatMs,
    identity: { apiKey: config.apiKey ?? "", machineId, hostname: config.hostname },
    capacity: config.advertiseCapacity,
    outboxMaxBytes: config.outboxMaxBytes,
  };
}

export function relayOptions(config: Config, upstream: Upstream): RelayOptions {
  return {
    authTimeoutMs: config.authTimeoutMs,
    daemonTimeoutMs: config.daemonTimeoutMs,
    graceMs: config.graceMs,
    historyKeep: config.historyKeep,
    daemonRate: config.daemonRate,
    daemonBurst: config.daemonBurst,
    daemonByteRate: config.daemonByteRate,
    daemonByteBurst: config.daemonByteBurst,
    maxFrameBytes: config.maxFrameBytes,
    maxUnauthenticated: config.maxUnauthenticated,
    maxUnauthenticatedPerAddress: config.maxUnauthenticatedPerAddress,
    onCapacityChange: (total) => upstream.advertiseCapacity(total),
    acceptKey: createKeyCheck([config.apiKey ?? "", ...config.daemonKeys]),
    newId: randomUUID,
  };
}

export /** The passwords in the proxy URLs: masked in logs as a last line of defence, like the keys. */
function proxyPasswords(config: Config): string[] {
  return [config.upstreamProxy, config.httpsProxy, config.httpProxy]
    .map((url) => (url ? decodeURIComponent(URL.parse(url)?.password ?? "") : ""))
    .filter((password) => password.length > 0);
}

/** The effective settings, once, so an operator can see what is in force; never a secret. */
export function logEffectiveConfig(config: Config, log: Logger): void {
  log.log("info", "config", {
    serverUrl: config.serverUrl ? redactUrl(config.serverUrl) : null,
    upstreamProxy: upstreamProxyShown(config),
    database: config.dbPath,
    tls: config.tlsCert !== null,
    daemonKeys: config.daemonKeys.length,
    adminToken: config.adminToken !== null,
    protectReads: config.protectReads,
    corsOrigins: config.corsOrigins,
    advertiseCapacity: config.advertiseCapacity,
    graceMs: config.graceMs,
    daemonTimeoutMs: config.daemonTimeoutMs,
    maxFrameBytes: config.maxFrameBytes,
    daemonRate: config.daemonRate,
    daemonByteRate: config.daemonByteRate,
    outboxMaxBytes: config.outboxMaxBytes,
    historyKeep: config.historyKeep,
  });
}

/** The proxy the link goes through, without its credentials; null when it connects directly. */
function upstreamProxyShown(config: Config): string | null {
  const proxy = config.serverUrl ? upstreamProxyFor(config)(new URL(config.serverUrl)) : null;
  return proxy ? redactUrl(proxy.href) : null;
}
