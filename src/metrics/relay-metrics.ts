/**
 * The relay's Prometheus metrics: one prom-client Registry per relay (never the
 * global default, since tests run several relays in one process), filled at
 * scrape time by `collect()` callbacks that read the counters the core already
 * keeps. Nothing here runs per frame: the core increments plain numbers and
 * /metrics turns them into prom-client values when scraped.
 *
 * prom-client and the Registry (prom-registry.ts) are loaded at the first
 * scrape, not at start: importing prom-client is a large share of the start-up
 * time, and since every value is read from the core when scraped, a registry
 * built later reports exactly what one built at start would.
 */
import type { Registry } from "prom-client";
import type { StorageStatus, TaskStore } from "../core/ports.ts";
import type { RelayStats } from "../core/stats.ts";
import type { TaskBook } from "../core/task-book.ts";
import type { UpstreamLink } from "../core/upstream-link.ts";
import type { UpstreamOutbox } from "../core/upstream-outbox.ts";

/** What the metrics read; the real Relay, UpstreamLink, UpstreamOutbox and TaskStore fit. */
export interface MetricsSources {
  relay: {
    registry: { readonly size: number };
    tasks: Pick<TaskBook, "queued">;
    stats: Pick<
      RelayStats,
      | "endedByStatus"
      | "lostTasks"
      | "throttleEpisodes"
      | "throttledNow"
      | "failedCommits"
      | "daemonToServer"
      | "serverToDaemon"
      | "dispatchLatency"
      | "frameLatency"
    >;
  };
  link: Pick<UpstreamLink, "authenticated" | "reconnectsTotal" | "linkDrops">;
  outbox: Pick<UpstreamOutbox, "stats" | "counters" | "isFull">;
  tasks: Pick<TaskStore, "countByStatus">;
  storage(): StorageStatus;
  /** Reloads (SIGHUP, POST /admin/reload) by result, since start; absent: none counted. */
  reloads?(): { ok: number; error: number };
}

export interface RelayMetrics {
  /** This relay's own Registry, built at the first render(); undefined until then. */
  readonly registry: Registry | undefined;
  /** `text/plain; version=0.0.4; charset=utf-8` (Prometheus text exposition format). */
  readonly contentType: string;
  render(): Promise<string>;
}

/** prom-client's `Registry.PROMETHEUS_CONTENT_TYPE`, known before prom-client is loaded. */
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export function createRelayMetrics(src: MetricsSources): RelayMetrics {
  let registry: Registry | undefined;
  let building: Promise<Registry> | undefined;
  // One build however many scrapes arrive while prom-client loads; a failed load is retried.
  const built = (): Promise<Registry> =>
    (building ??= import("./prom-registry.ts").then(
      (m) => (registry = m.buildRegistry(src)),
      (error: unknown) => {
        building = undefined;
        throw error;
      },
    ));
  return {
    get registry() {
      return registry;
    },
    contentType: CONTENT_TYPE,
    render: async () => (await built()).metrics(),
  };
}
