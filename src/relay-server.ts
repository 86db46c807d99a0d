/**
 * The composition root: builds every part from the config and wires them.
 * Used by the CLI, the demo, the benchmark and the integration tests.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Server } from "bun";
import { type Config, upstreamProblem } from "./config/config.ts";
import { type Clock, type Jitter, systemClock } from "./core/clock.ts";
import { createKeyCheck } from "./core/key-check.ts";
import type { StorageStatus, Stores } from "./core/ports.ts";
import { Relay } from "./core/relay.ts";
import { UpstreamLink, type UpstreamTransport } from "./core/upstream-link.ts";
import { UpstreamOutbox } from "./core/upstream-outbox.ts";
import { createHttpApp } from "./http/app.ts";
import { createHttpDeps } from "./http/deps.ts";
import { createLogger, type Logger, stdoutWriter } from "./log/logger.ts";
import { createRelayMetrics, type RelayMetrics } from "./metrics/relay-metrics.ts";
import { MAX_CAPACITY } from "./protocol/messages.ts";
import { redactUrl } from "./protocol/url.ts";
import { createStores, openDatabase } from "./store/database.ts";
import { createWriteBatch, sqliteTransactions } from "./store/write-batch.ts";
import type { SocketData } from "./transport/daemon-socket.ts";
import { startSocketServer } from "./transport/relay-socket-server.ts";
import { createBatchedUpstreamTransport } from "./transport/upstream-batched-socket.ts";
import { createWebSocketUpstreamTransport } from "./transport/upstream-websocket.ts";
import { VERSION } from "./version.ts";

export interface RelayServerOverrides {
  clock?: Clock;
  jitter?: Jitter;
  write?: (line: string) => void;
  transport?: UpstreamTransport;
}

export interface RelayServer {
  readonly port: number;
  /** http://host:port of the HTTP API. */
  readonly url: string;
  readonly machineId: string;
  readonly relay: Relay;
  readonly link: UpstreamLink;
  readonly outbox: UpstreamOutbox;
  /** The Prometheus registry behind GET /metrics (one per relay). */
  readonly metrics: RelayMetrics;
  readonly stores: Stores;
  readonly log: Logger;
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
  const database = openDatabase(config.dbPath, { synchronous: config.dbSynchronous });
  // Told when commits start or stop failing; the relay and the link stop reading meanwhile.
  const storageListeners: Array<(status: StorageStatus) => void> = [];
  const batch = createWriteBatch(sqliteTransactions(database.sqlite), {
    clock,
    onStatusChange: (status) => {
      for (const listener of storageListeners) listener(status);
    },
    onBug: (err) => reportBug("database write", err),
  });
  const stores = createStores(database.db, database.sqlite, {
    logKeep: config.logKeep,
    batch,
  });
  log.attach(stores.connectionLog);
  const machineId = loadMachineId(stores);
  const startedAt = clock.now();

  let relay: Relay | null = null;
  let outbox: UpstreamOutbox | null = null;
  const link = new UpstreamLink(
    {
      url: config.serverUrl,
      unconfiguredReason: upstreamProblem(config),
      baseMs: config.reconnectBaseMs,
      maxMs: config.reconnectMaxMs,
      maxReconnects: config.maxReconnects,
      connectTimeoutMs: config.connectTimeoutMs,
      heartbeatMs: config.heartbeatMs,
    },
    () => ({
      apiKey: config.apiKey ?? "",
      machineId,
      hostname: config.hostname,
      maxConcurrentTasks: advertisedCapacity(config, relay),
    }),
    overrides.transport ?? upstreamTransport(config),
    {
      onAuthenticated: () => outbox?.onAuthenticated(),
      onFrame: (text) => {
        try {
          relay?.serverFrame(text);
        } catch (err) {
          // A bug triggered by one server frame must not end the link or the relay.
          reportBug("upstream message", err);
        }
      },
      onDown: () => outbox?.onDown(),
      onDrain: () => outbox?.onDrain(),
      heartbeatTasks: () => relay?.tasks.heartbeatTasks() ?? [],
      afterCommit: stores.afterCommit,
    },
    clock,
    overrides.jitter ?? Math.random,
    log,
  );
  outbox = new UpstreamOutbox(
    link,
    stores.outbox,
    config.outboxMaxBytes,
    clock,
    log,
    stores.afterCommit,
  );
  relay = new Relay(
    {
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
      ...(config.advertiseCapacity === "auto"
        ? {
            onCapacityChange: (total: number) =>
              link.advertiseCapacity(Math.min(total, MAX_CAPACITY)),
          }
        : {}),
      acceptKey: createKeyCheck([config.apiKey ?? "", ...config.daemonKeys]),
      newId: randomUUID,
    },
    stores,
    outbox,
    clock,
    log,
  );
  outbox.onFlowChange = (congested) => relay?.setInboundPaused(congested);
  outbox.onFullChange = (full) => relay?.setOutboxFull(full);
  const liveRelay = relay;
  storageListeners.push((status) => {
    liveRelay.storageChanged(status);
    link.setPaused(!status.ok);
  });
  relay.start();

  const metrics = createRelayMetrics({
    relay,
    link,
    outbox,
    tasks: stores.tasks,
    storage: stores.storage,
  });
  const app = createHttpApp(
    createHttpDeps({
      relay,
      link,
      outbox,
      stores,
      clock,
      version: VERSION,
      agentName: config.agentName,
      machineId,
      startedAt,
      outboxMaxBytes: config.outboxMaxBytes,
      reportError: (err, where) => log.log("error", "http_error", { ...where, error: String(err) }),
      metrics,
    }),
    {
      adminToken: config.adminToken,
      corsOrigins: config.corsOrigins,
      protectReads: config.protectReads,
    },
  );
  let server: Server<SocketData>;
  try {
    server = startSocketServer({
      host: config.host,
      port: config.port,
      maxFrameBytes: config.maxFrameBytes,
      tls:
        config.tlsCert && config.tlsKey
          ? { cert: readFileSync(config.tlsCert, "utf8"), key: readFileSync(config.tlsKey, "utf8") }
          : null,
      relay,
      fetch: (req, remoteAddress) => app.fetch(req, remoteAddress),
      onBug: reportBug,
      newId: randomUUID,
    });
  } catch (err) {
    database.close();
    throw err;
  }
  const port = server.port as number;
  log.connection(
    "listening",
    `Relay ${VERSION} listening on ${config.host}:${port} (machineId ${machineId})`,
  );
  // The effective settings, once, so an operator can see what is in force; never a secret.
  log.log("info", "config", {
    serverUrl: config.serverUrl ? redactUrl(config.serverUrl) : null,
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
  link.start();

  let stopping: Promise<void> | null = null;
  return {
    port,
    url: `${config.tlsCert ? "https" : "http"}://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${port}`,
    machineId,
    relay: liveRelay,
    link,
    outbox,
    metrics,
    stores,
    log,
    stop() {
      stopping ??= (async () => {
        server.stop(false);
        liveRelay.stop();
        await link.flush(2000);
        link.stop();
        await server.stop(true);
        log.connection("stopped", "Relay stopped");
        batch.stop();
        if (!batch.flush()) {
          log.log("error", "storage_unsaved_at_stop", {
            detail: "commits still fail; the writes since the last commit are lost with this stop",
            pendingWrites: batch.status.ok ? 0 : batch.status.pendingWrites,
          });
        }
        database.close();
      })();
      return stopping;
    },
  };
}

function advertisedCapacity(config: Config, relay: Relay | null): number {
  if (config.advertiseCapacity !== "auto") return config.advertiseCapacity;
  return Math.min(relay?.registry.totalCapacity ?? 0, MAX_CAPACITY);
}

/** Bun's WebSocket client by default; the batching client when asked for (see BENCHMARKS.md). */
function upstreamTransport(config: Config): UpstreamTransport {
  const ca = config.upstreamCa ? readFileSync(config.upstreamCa, "utf8") : null;
  return config.upstreamBatchWrites
    ? createBatchedUpstreamTransport({ ca })
    : createWebSocketUpstreamTransport({ ca });
}
