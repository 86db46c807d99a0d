/**
 * GET /metrics: the Prometheus text exposition (format 0.0.4). The metrics
 * themselves are built in src/metrics and read the core's counters at scrape
 * time; this plugin only serves their text. A read route like /status.
 */
import { Elysia, t } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";
import type { HttpDeps } from "./deps.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export const MetricsText = t.String({
  description:
    "Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` lines, then one sample per line. Every name starts with `makima_relay_`; counters end in `_total`.",
  examples: [
    "# HELP makima_relay_upstream_connected 1 while the upstream link is authenticated, else 0\n# TYPE makima_relay_upstream_connected gauge\nmakima_relay_upstream_connected 1\n",
  ],
});

export function metricsRoutes(deps: Pick<HttpDeps, "metrics">) {
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.metrics" }).get(
    "/metrics",
    async ({ set }) => {
      const exposition = deps.metrics;
      set.headers["content-type"] = exposition?.contentType ?? PROMETHEUS_CONTENT_TYPE;
      return exposition ? await exposition.render() : "";
    },
    {
      response: { 200: MetricsText },
      detail: {
        summary: "Prometheus metrics",
        description:
          "Upstream link, daemons, tasks by status, queue length, frames and bytes relayed by direction and type, outbox backlog and drops, rate-limited frames, and dispatch and frame relay latency histograms (seconds). Values are read from the relay's live counters at scrape time.",
        tags: ["metrics"],
      },
    },
  );
}
