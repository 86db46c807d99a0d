/**
 * The prom-client side of the relay's metrics: the Registry and one metric
 * per core counter, each filled by a `collect()` callback at scrape time.
 * Imported only when /metrics is first scraped (relay-metrics.ts), since
 * loading prom-client is a large share of the relay's start-up time.
 */
import { Counter, Gauge, type LabelValues, Registry } from "prom-client";
import { ENDED_STATUSES, TASK_STATUSES } from "../core/ports.ts";
import { DAEMON_TO_SERVER_TYPES, SERVER_TO_DAEMON_TYPES } from "../core/stats.ts";
import { CoreHistogram } from "./core-histogram.ts";
import type { MetricsSources } from "./relay-metrics.ts";

const METRIC_PREFIX = "makima_relay_";

type Read<L extends string> = () => readonly (readonly [LabelValues<L>, number])[];

/**
 * A new Registry (never prom-client's global one) holding every metric of the
 * relay. Long because it is the one list of metrics, one short call each.
 */
export function buildRegistry(src: MetricsSources): Registry {
  const registry = new Registry();
  const { relay, link, outbox } = src;
  const stats = relay.stats;
  const m = metricFactory(registry);

  m.gauge("upstream_connected", "1 while the upstream link is authenticated, else 0", () =>
    link.authenticated ? 1 : 0,
  );
  m.counter(
    "upstream_reconnects_total",
    "Reconnects scheduled after the upstream link dropped or failed to connect",
    () => link.reconnectsTotal,
  );
  m.counter(
    "upstream_link_drops_total",
    "Authenticated upstream links that dropped without the relay asking, since start",
    () => link.linkDrops,
  );
  m.gauge(
    "daemons_connected",
    "Authenticated daemon connections (child relays included)",
    () => relay.registry.size,
  );
  m.labeledGauge(
    "tasks",
    "Tasks in the relay's database by status (ended ones are pruned beyond MAKIMA_RELAY_HISTORY_KEEP)",
    ["status"],
    () => {
      const counts = src.tasks.countByStatus();
      return TASK_STATUSES.map((status) => [{ status }, counts[status]] as const);
    },
  );
  m.gauge("task_queue_length", "Tasks waiting for a free daemon slot", () => relay.tasks.queued);
  m.labeledCounter(
    "tasks_ended_total",
    "Tasks that ended, by final status, since the relay started",
    ["status"],
    () => ENDED_STATUSES.map((status) => [{ status }, stats.endedByStatus[status] ?? 0] as const),
  );
  m.labeledCounter(
    "reloads_total",
    "Reloads of secrets and the TLS certificate (SIGHUP, POST /admin/reload) since start, by result (error: a file could not be used and kept its old value)",
    ["result"],
    () => {
      const counts = src.reloads?.() ?? { ok: 0, error: 0 };
      return [[{ result: "ok" }, counts.ok] as const, [{ result: "error" }, counts.error] as const];
    },
  );
  m.counter(
    "tasks_lost_total",
    "Tasks lost (daemon gone past the grace period, or missing from its first heartbeat) since start",
    () => stats.lostTasks,
  );
  m.labeledCounter(
    "frames_relayed_total",
    "Frames relayed, by direction and protocol type (unknown types count as other). daemon_to_server: daemon frames handed to the upstream socket or outbox; server_to_daemon: server frames routed to daemons, once per frame on receipt (dispatched, queued, held or broadcast)",
    ["direction", "type"],
    () => [
      ...DAEMON_TO_SERVER_TYPES.map(
        (type) =>
          [{ direction: "daemon_to_server", type }, stats.daemonToServer.frames[type]] as const,
      ),
      ...SERVER_TO_DAEMON_TYPES.map(
        (type) =>
          [{ direction: "server_to_daemon", type }, stats.serverToDaemon.frames[type]] as const,
      ),
    ],
  );
  m.labeledCounter(
    "bytes_relayed_total",
    "UTF-8 bytes of the frames counted by makima_relay_frames_relayed_total, by direction",
    ["direction"],
    () => [
      [{ direction: "daemon_to_server" }, stats.daemonToServer.bytes],
      [{ direction: "server_to_daemon" }, stats.serverToDaemon.bytes],
    ],
  );
  m.gauge(
    "outbox_frames",
    "Frames held for the server while upstream is down or slow",
    () => outbox.stats().frames,
  );
  m.gauge("outbox_bytes", "Bytes held in the outbox", () => outbox.stats().bytes);
  m.gauge(
    "outbox_full",
    "1 while the outbox is over its limit with task results it may not drop (daemons are not read), else 0",
    () => (outbox.isFull ? 1 : 0),
  );
  m.counter(
    "outbox_dropped_frames_total",
    "Output frames dropped because the outbox was full, since start",
    () => outbox.counters.droppedFrames,
  );
  m.counter(
    "daemon_throttle_episodes_total",
    "Times a daemon went over its frame rate and was read more slowly (nothing is dropped), since start",
    () => stats.throttleEpisodes,
  );
  m.gauge(
    "daemons_throttled",
    "Daemon connections not being read right now because they are over their frame rate",
    () => stats.throttledNow,
  );
  m.gauge("storage_ok", "1 while commits to the database succeed, 0 while they fail", () =>
    src.storage().ok ? 1 : 0,
  );
  m.gauge(
    "storage_pending_writes",
    "Writes kept in memory because commits fail (0 when storage is healthy)",
    () => {
      const s = src.storage();
      return s.ok ? 0 : s.pendingWrites;
    },
  );
  m.counter(
    "storage_failed_commits_total",
    "Commits to the database that failed (each is retried), since start",
    () => stats.failedCommits,
  );
  new CoreHistogram({
    name: `${METRIC_PREFIX}dispatch_latency_seconds`,
    help: "spawnTask received from the server → written to a daemon (queue wait included; 1 ms resolution)",
    registry,
    source: stats.dispatchLatency,
  });
  new CoreHistogram({
    name: `${METRIC_PREFIX}frame_relay_latency_seconds`,
    help: "Daemon frame read → handed to the upstream socket or outbox; sampled, one daemon frame in 16 is timed by default",
    registry,
    source: stats.frameLatency,
  });

  return registry;
}

/** Metrics whose value is read from the core when scraped, registered on `registry` only. */
function metricFactory(registry: Registry) {
  const registers = [registry];
  // Both kinds are emptied and refilled at each scrape: a counter cannot be set,
  // so reset-then-inc mirrors a core counter that only grows.
  const define = <L extends string>(
    Kind: typeof Gauge | typeof Counter,
    name: string,
    help: string,
    labelNames: L[],
    read: Read<L>,
  ): void => {
    new Kind<L>({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames,
      registers,
      collect(this: Gauge<L> | Counter<L>) {
        this.reset();
        for (const [labels, value] of read()) {
          if (this instanceof Gauge) this.set(labels, value);
          else this.inc(labels, value);
        }
      },
    });
  };
  const unlabeled =
    (read: () => number): Read<never> =>
    () => [[{}, read()]];
  return {
    gauge: (name: string, help: string, read: () => number) =>
      define(Gauge, name, help, [], unlabeled(read)),
    labeledGauge: <L extends string>(name: string, help: string, labelNames: L[], read: Read<L>) =>
      define(Gauge, name, help, labelNames, read),
    counter: (name: string, help: string, read: () => number) =>
      define(Counter, name, help, [], unlabeled(read)),
    labeledCounter: <L extends string>(
      name: string,
      help: string,
      labelNames: L[],
      read: Read<L>,
    ) => define(Counter, name, help, labelNames, read),
  };
}
