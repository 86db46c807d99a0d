/**
 * The composition root: builds every part from the config and wires them.
 * Used by the CLI, the demo, the benchmark and the integration tests.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Config, SecretsReread } from "./config/config.ts";
import { upstreamProxyFor } from "./config/upstream-proxy.ts";
import { type Clock, type Jitter, systemClock } from "./core/clock.ts";
import type { Stores } from "./core/ports.ts";
import { Relay } from "./core/relay.ts";
import { Upstream } from "./core/upstream.ts";
import type { UpstreamLink } from "./core/upstream-link.ts";
import type { UpstreamOutbox } from "./core/upstream-outbox.ts";
import type { UpstreamTransport } from "./core/upstream-socket.ts";
import { createHttpApp } from "./http/app.ts";
import { createHttpDeps } from "./http/deps.ts";
import { createLogger, type Logger, stdoutWriter } from "./log/logger.ts";
import { createRelayMetrics, type RelayMetrics } from "./metrics/relay-metrics.ts";
import { createReloader, type Reloader, type ReloadOutcome, readTlsFiles } from "./relay-reload.ts";
import {
  logEffectiveConfig,
  proxyPasswords,
  relayOptions,
  upstreamOptions,
} from "./relay-settings.ts";
import { loadMachineId, openStorage, type Storage } from "./relay-storage.ts";
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

/**
 * Builds the relay in dependency order, each part given what it needs when
 * it is built: logger, storage, upstream, core, HTTP, listener. The upstream
 * link is started last, once everything that hears from it is listening.
 */
export async function startRelayServer(
  config: Config,
  overrides: RelayServerOverrides = {},
): Promise<RelayServer> {
  const clock = overrides.clock ?? systemClock;
  const log = createLogger({
    level: config.logLevel,
    clock,
    write: overrides.write ?? stdoutWriter,
    secrets: [
      config.apiKey ?? "",
      ...config.daemonKeys,
      config.adminToken ?? "",
      ...proxyPasswords(config),
    ],
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
  const core = startCore({ config, overrides, storage, machineId, clock, log, reportBug });
  const reloader = createReloader({
    config,
    reread: overrides.rereadSecrets ?? (() => ({ secrets: {}, errors: [] })),
    readFile: readText,
    ...core,
    tls: tls?.value ?? null,
    log,
  });
  const http = createHttp({ config, ...core, stores, clock, machineId, reloader, log });
  let server: SocketServer;
  try {
    server = startSocketServer({
      host: config.host,
      port: config.port,
      maxFrameBytes: config.maxFrameBytes,
      tls: tls?.value ?? null,
      relay: core.relay,
      fetch: (req, remoteAddress) => http.app.fetch(req, remoteAddress),
      onBug: reportBug,
      newId: randomUUID,
    });
  } catch (err) {
    storage.database.close();
    throw err;
  }
  reloader.serveTlsWith(server);
  log.connection(
    "listening",
    `Relay ${VERSION} listening on ${config.host}:${server.port} (machineId ${machineId})`,
  );
  logEffectiveConfig(config, log);
  core.upstream.start();
  return running({
    config,
    ...core,
    server,
    storage,
    machineId,
    reloader,
    metrics: http.metrics,
    log,
  });
}

interface CoreParts {
  config: Config;
  overrides: RelayServerOverrides;
  storage: Storage;
  machineId: string;
  clock: Clock;
  log: Logger;
  reportBug: (where: string, err: unknown) => void;
}

/** The upstream and the relay core, wired to each other and to the storage status; started. */
function startCore(parts: CoreParts): { relay: Relay; upstream: Upstream } {
  const { config, overrides, storage, clock, log } = parts;
  const { stores } = storage;
  const upstream = new Upstream(upstreamOptions(config, parts.machineId), {
    transport: overrides.transport ?? upstreamTransport(config),
    outboxStore: stores.outbox,
    afterCommit: stores.afterCommit,
    clock,
    jitter: overrides.jitter ?? Math.random,
    log,
    reportBug: parts.reportBug,
  });
  const relay = new Relay(relayOptions(config, upstream), stores, upstream, clock, log);
  upstream.listen(relay);
  // Commits failing: neither the daemons nor the server are read until they succeed again.
  storage.status.add((status) => relay.storageChanged(status));
  storage.status.add((status) => upstream.setPaused(!status.ok));
  relay.start();
  return { relay, upstream };
}

interface RunningParts {
  config: Config;
  relay: Relay;
  upstream: Upstream;
  server: SocketServer;
  storage: Storage;
  machineId: string;
  reloader: Reloader;
  metrics: RelayMetrics;
  log: Logger;
}

/** The running relay, and its shutdown order (style guide: listener, daemons, upstream, database). */
function running(parts: RunningParts): RelayServer {
  const { config, relay, upstream, server, storage, reloader, log } = parts;
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host;
  let stopping: Promise<void> | null = null;
  return {
    port: server.port,
    url: `${config.tlsCert ? "https" : "http"}://${host}:${server.port}`,
    machineId: parts.machineId,
    relay,
    upstream,
    link: upstream.link,
    outbox: upstream.outbox,
    metrics: parts.metrics,
    stores: storage.stores,
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

interface HttpParts {
  config: Config;
  relay: Relay;
  upstream: Upstream;
  stores: Stores;
  clock: Clock;
  machineId: string;
  reloader: Reloader;
  log: Logger;
}

/** The metrics registry and the HTTP app over the relay's parts (what GET /… can see). */
function createHttp(parts: HttpParts): {
  app: ReturnType<typeof createHttpApp>;
  metrics: RelayMetrics;
} {
  const { config, relay, upstream, stores, reloader, log } = parts;
  const metrics = createRelayMetrics({
    relay,
    link: upstream.link,
    outbox: upstream.outbox,
    tasks: stores.tasks,
    storage: stores.storage,
    reloads: () => reloader.counts,
  });
  const deps = createHttpDeps({
    relay,
    link: upstream.link,
    outbox: upstream.outbox,
    stores,
    clock: parts.clock,
    version: VERSION,
    agentName: config.agentName,
    machineId: parts.machineId,
    startedAt: parts.clock.now(),
    outboxMaxBytes: config.outboxMaxBytes,
    reportError: (err, where) => log.log("error", "http_error", { ...where, error: String(err) }),
    metrics,
    reload: () => reloader.reload(),
  });
  const app = createHttpApp(deps, {
    // Read at each request: a reload changes it.
    get adminToken() {
      return reloader.secrets.adminToken;
    },
    corsOrigins: config.corsOrigins,
    protectReads: config.protectReads,
  });
  return { app, metrics };
}

const readText = (path: string): string => readFileSync(path, "utf8");

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
