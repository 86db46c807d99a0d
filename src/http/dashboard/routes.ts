/**
 * GET /dashboard (one self-contained page: inline CSS and JS, no network
 * beyond this relay) and GET /dashboard/events (its Server-Sent Events
 * stream of snapshots). The page falls back to polling the JSON API only
 * when the stream cannot be used.
 */
import { Elysia } from "elysia";
import { ELYSIA_CONFIG } from "../config.ts";
import type { HttpDeps } from "../deps.ts";
// Bun's text loader gives the file's contents; bun-types declares *.html as an
// HTMLBundle (for Bun.serve routes), hence the cast below.
import page from "./dashboard.html" with { type: "text" };
import { SnapshotFeed } from "./events.ts";
import { buildSnapshot, type DashboardSnapshot, SNAPSHOT_MAX_BYTES } from "./snapshot.ts";

export const DASHBOARD_HTML = page as unknown as string;

export interface DashboardOptions {
  /** How often the stream rebuilds the snapshot (it sends only changes). */
  intervalMs?: number;
  /** Longest silence on the stream; below Bun.serve's idleTimeout (10 s). */
  keepAliveMs?: number;
  /** Event streams open at once; one more is answered 503 (the page then polls). */
  maxStreams?: number;
  /** The feed the streams pull from (tests pass their own to watch it). */
  feed?: SnapshotFeed<DashboardSnapshot>;
}

export const SNAPSHOT_INTERVAL_MS = 250;
export const KEEP_ALIVE_MS = 5000;
export const MAX_EVENT_STREAMS = 32;

/** Only the page itself, its stream and this relay: the page must work offline. */
const CSP = [
  "default-src 'none'",
  "script-src 'unsafe-inline'",
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const DASHBOARD_PATHS: ReadonlySet<string> = new Set(["/dashboard", "/dashboard/events"]);

/**
 * When reads are protected, the app's access guard (src/http/access.ts) wants
 * `Authorization: Bearer <admin token>`, which EventSource cannot send. On the
 * dashboard's two paths only, a `?token=` stands in for that header; the guard
 * then checks it like any other, so the token check stays in one place. Runs
 * in onRequest, so this plugin must be used before the guard.
 */
export function queryTokenAsBearer(request: Request): void {
  if (request.headers.has("authorization")) return;
  const url = new URL(request.url);
  if (!DASHBOARD_PATHS.has(url.pathname)) return;
  const token = url.searchParams.get("token");
  if (token) request.headers.set("authorization", `Bearer ${token}`);
}

export function dashboardRoutes(deps: HttpDeps, opts: DashboardOptions = {}) {
  // A UI, not part of the API: kept out of the OpenAPI document.
  const detail = { hide: true };
  const maxStreams = opts.maxStreams ?? MAX_EVENT_STREAMS;
  const feed =
    opts.feed ??
    new SnapshotFeed({
      build: () => buildSnapshot(deps),
      now: () => deps.clock.now(),
      intervalMs: opts.intervalMs ?? SNAPSHOT_INTERVAL_MS,
      keepAliveMs: opts.keepAliveMs ?? KEEP_ALIVE_MS,
      maxStreams,
      maxSnapshotBytes: SNAPSHOT_MAX_BYTES,
      onError: (error) => deps.reportError?.(error, { method: "GET", path: "/dashboard/events" }),
    });
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.dashboard" })
    .onRequest(({ request }) => queryTokenAsBearer(request))
    .get(
      "/dashboard",
      () =>
        new Response(DASHBOARD_HTML, {
          headers: {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "content-security-policy": CSP,
            // The URL may carry ?token=.
            "referrer-policy": "no-referrer",
          },
        }),
      { detail },
    )
    .get(
      "/dashboard/events",
      ({ status }) => {
        const stream = feed.open();
        if (stream === null) {
          return status(503, {
            error: `${maxStreams} dashboard event streams are open already; poll the JSON API instead`,
          });
        }
        return new Response(stream, {
          headers: {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-store",
            // Proxies such as nginx would otherwise hold the events back.
            "x-accel-buffering": "no",
          },
        });
      },
      { detail },
    );
}
