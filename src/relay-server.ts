/**
 * The composition root: builds every part from the config and wires them.
 * Used by the CLI, the demo, the benchmark and the integration tests.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Config, type SecretsReread, upstreamProblem } from "./config/config.ts";
import { upstreamProxyFor } from "./config/upstream-proxy.ts";
import { type Clock, type Jitter, systemClock } from "./core/clock.ts";
import { createKeyCheck } from "./core/key-check.ts";
import { Listeners } from "./core/listeners.ts";
import type { StorageStatus, Stores } from "./core/ports.ts";
import { Relay, type RelayOptions } from "./core/relay.ts";
import { Upstream, type UpstreamOptions } from "./core/upstream.ts";
import type { UpstreamLink, UpstreamTransport } from "./core/upstream-link.ts";
import type { UpstreamOutbox } from "./core/upstream-outbox.ts";
import { createHttpApp } from "./http/app.ts";
import { createHttpDeps } from "./http/deps.ts";
import { createLogger, type Logger, stdoutWriter } from "./log/logger.ts";
import { createRelayMetrics, type RelayMetrics } from "./metrics/relay-metrics.ts";
import { redactUrl } from "./protocol/url.ts";
import { createReloader, type ReloadOutcome, readTlsFiles } from "./relay-reload.ts";
import { createStores, openDatabase, type RelayDatabase } from "./store/database.ts";
import { createWriteBatch, sqliteTransactions } from "./store/write-batch.ts";
import { type SocketServer, startSocketServer } from "./transport/relay-socket-server.ts";
import { createBatchedUpstreamTransport } from "./transport/upstream-batched-socket.ts";
import { VERSION } from "./version.ts";

export interface RelayServerOverrides {
  clock?: Clock;
  jitter?: Jitter;
  write?: (line: string) => void;
  transport?: UpstreamTransport;
  /**
   * The secrets as their files say now, for a reload (config.ts
   * rereadSecrets over the relay's own env and flags). Without it a reload
   * finds nothing changed.
   */
  rereadSecrets?: () => SecretsReread;
}

export interface RelayServer {
  readonly port: number;
  /** http://host:port of the HTTP API. */
  readonly url: string;
  readonly machineId: string;
  readonly relay: Relay;
  readonly upstream: Upstream;
  readonly link: UpstreamLink;
  readonly outbox: UpstreamOutbox;
  /** The Prometheus registry behind GET /metrics (one per relay). */
  readonly metrics: RelayMetrics;
  readonly stores: Stores;
  readonly log: Logger;
  /** Re-reads the secrets and the TLS files (SIGHUP, POST /admin/reload): relay-reload.ts. */
  reload(): ReloadOutcome;
  stop(): Promise<void>;
}

function loadMachineId(stores: Stores): string {
  const existing = stores.meta.get("machineId");
  if (existing) return existing;
  const id = `makima-relay-${randomUUID()}`;
  stores.meta.set("machineId", id);
  return id;
}

export async function startRelayServer(
  config: Config,
  overrides: RelayServerOverrides = {},
): Promise<RelayServer> {
  const clock = overrides.clock ?? systemClock;
  const log = createLogger({
    level: config.logLevel,
    clock,
    write: overrides.write ?? stdoutWriter,
    secrets: [config.apiKey ?? "", ...config.daemonKeys, config.adminToken ?? ""],
  });
  const reportBug = (where: string, err: unknown): void =>
    log.log("error", "internal_error", { where, error: String(err), stack: (err as Error)?.stack });
  // Checked before anything opens: a certificate that is not the key's stops the start.
  const tls = config.tlsCert && config.tlsKey ? readTlsFiles(config, readText) : null;
  if (tls && !tls.ok) throw new Error(tls.error);
  const storage = openStorage(config, clock, reportBug);
  const { stores } = storage;
  log.attach(stores.connectionLog);
  const machineId = loadMachineId(stores);
  const startedAt = clock.now();
  const upstream = new Upstream(upstreamOptions(config, machineId), {
    transport: overrides.transport ?? upstreamTransport(config),
    outboxStore: stores.outbox,
    afterCommit: stores.afterCommit,
    clock,
    jitter: overrides.jitter ?? Math.random,
    log,
    reportBug,
  });
  const relay = new Relay(relayOptions(config, upstream), stores, upstream, clock, log);
  upstream.listen(relay);
  // Commits failing: neither the daemons nor the server are read until they succeed again.
  storage.status.add((status) => relay.storageChanged(status));
  storage.status.add((status) => upstream.setPaused(!status.ok));
  relay.start();
  const reloader = createReloader({
    config,
    reread: overrides.rereadSecrets ?? (() => ({ secrets: {}, errors: [] })),
    readFile: readText,
    relay,
    upstream,
    tls: tls?.value ?? null,
    log,
  });
  const metrics = createRelayMetrics({
    relay,
    link: upstream.link,
    outbox: upstream.outbox,
    tasks: stores.tasks,
    storage: stores.storage,
    reloads: () => reloader.counts,
  });
  const app = createHttpApp(
    createHttpDeps({
      relay,
      link: upstream.link,
      outbox: upstream.outbox,
      stores,
      clock,
      version: VERSION,
      agentName: config.agentName,
      machineId,
      startedAt,
      outboxMaxBytes: config.outboxMaxBytes,
      reportError: (err, where) => log.log("error", "http_error", { ...where, error: String(err) }),
      metrics,
      reload: () => reloader.reload(),
    }),
    {
      // Read at each request: a reload changes it.
      get adminToken() {
        return reloader.secrets.adminToken;
      },
      corsOrigins: config.corsOrigins,
      protectReads: config.protectReads,
    },
  );
  let server: SocketServer;
  try {
    server = startSocketServer({
      host: config.host,
      port: config.port,
      maxFrameBytes: config.maxFrameBytes,
      tls: tls?.value ?? null,
      relay,
      fetch: (req, remoteAddress) => app.fetch(req, remoteAddress),
      onBug: reportBug,
      newId: randomUUID,
    });
  } catch (err) {
    storage.database.close();
    throw err;
  }
  reloader.serveTlsWith(server);
  const port = server.port;
  log.connection(
    "listening",
    `Relay ${VERSION} listening on ${config.host}:${port} (machineId ${machineId})`,
  );
  logEffectiveConfig(config, log);
  upstream.start();

  let stopping: Promise<void> | null = null;
  return {
    port,
    url: `${config.tlsCert ? "https" : "http"}://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${port}`,
    machineId,
    relay,
    upstream,
    link: upstream.link,
    outbox: upstream.outbox,
    metrics,
    stores,
    log,
    reload: () => reloader.reload(),
    stop() {
      stopping ??= (async () => {
        void server.stop(false);
        relay.stop();
        await upstream.stop(2000);
        await server.stop(true);
        log.connection("stopped", "Relay stopped");
        storage.close(log);
      })();
      return stopping;
    },
  };
}

interface Storage {
  database: RelayDatabase;
  stores: Stores;
  /** Told when commits start or stop failing (the write batch's status). */
  status: Listeners<StorageStatus>;
  /** Commits what is left (said in the log when it cannot), then closes the database. */
  close(log: Logger): void;
}

function openStorage(
  config: Config,
  clock: Clock,
  reportBug: (where: string, err: unknown) => void,
): Storage {
  const database = openDatabase(config.dbPath, { synchronous: config.dbSynchronous });
  const status = new Listeners<StorageStatus>();
  const batch = createWriteBatch(sqliteTransactions(database.sqlite), {
    clock,
    onStatusChange: (s) => status.tell(s),
    onBug: (err) => reportBug("database write", err),
  });
  const stores = createStores(database.db, database.sqlite, { logKeep: config.logKeep, batch });
  const close = (log: Logger): void => {
    batch.stop();
    if (!batch.flush()) {
      log.log("error", "storage_unsaved_at_stop", {
        detail: "commits still fail; the writes since the last commit are lost with this stop",
        pendingWrites: batch.status.ok ? 0 : batch.status.pendingWrites,
      });
    }
    database.close();
  };
  return { database, stores, status, close };
}

function upstreamOptions(config: Config, machineId: string): UpstreamOptions {
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

function relayOptions(config: Config, upstream: Upstream): RelayOptions {
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

const readText = (path: string): string => readFileSync(path, "utf8");

/** The effective settings, once, so an operator can see what is in force; never a secret. */
function logEffectiveConfig(config: Config, log: Logger): void {
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

/** The upstream WebSocket client, which writes a turn's frames together (see BENCHMARKS.md). */
function upstreamTransport(config: Config): UpstreamTransport {
  const ca = config.upstreamCa ? readFileSync(config.upstreamCa, "utf8") : null;
  // A server's message is bounded as a daemon's frame is: the same limit on both links.
  return createBatchedUpstreamTransport({
    ca,
    maxMessageBytes: config.maxFrameBytes,
    proxyFor: upstreamProxyFor(config),
  });
}

/** The proxy the link goes through, without its credentials; null when it connects directly. */
function upstreamProxyShown(config: Config): string | null {
  const proxy = config.serverUrl ? upstreamProxyFor(config)(new URL(config.serverUrl)) : null;
  return proxy ? redactUrl(proxy.href) : null;
}
