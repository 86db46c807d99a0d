/**
 * The HTTP API, composed from one plugin per feature. It does not listen: the
 * composition root calls `fetch(req, remoteAddress)` from its own `Bun.serve`,
 * which also terminates /ws/daemon so that daemon frames are never coerced by
 * Elysia, and which alone knows the peer address the access guard needs.
 */
import { Elysia } from "elysia";
import { accessGuard, type HttpSecurity } from "./access.ts";
import { adminRoutes } from "./admin.ts";
import { ELYSIA_CONFIG } from "./config.ts";
import { cors } from "./cors.ts";
import { daemonRoutes } from "./daemons.ts";
import { dashboardRoutes } from "./dashboard/routes.ts";
import type { HttpDeps } from "./deps.ts";
import { drainRoutes } from "./drain.ts";
import { errorHandling } from "./errors.ts";
import { logRoutes } from "./logs.ts";
import { metricsRoutes } from "./metrics.ts";
import { openapiDocs } from "./openapi.ts";
import { statusRoutes } from "./status.ts";
import { taskRoutes } from "./tasks.ts";

export type { HttpSecurity };

export function createHttpApp(deps: HttpDeps, security: HttpSecurity) {
  // Socket peer addresses, by request: set in fetch() below, read by the guard. A WeakMap
  // rather than a header, so no client can supply its own (see access.ts).
  const peers = new WeakMap<Request, string>();
  // Cross-cutting plugins first: their hooks must wrap every route used after them.
  // CORS before the guard, so an allowed origin can read the 401/403 it gets.
  const app = new Elysia({ ...ELYSIA_CONFIG, name: "relay.http" })
    .use(cors(security.corsOrigins))
    .use(errorHandling((error, where) => deps.reportError?.(error, where)))
    .use(dashboardRoutes(deps)) // before the guard: it turns the dashboard's ?token= into a bearer
    .use(accessGuard(security, (request) => peers.get(request) ?? ""))
    .use(openapiDocs(deps.version))
    .use(statusRoutes(deps))
    .use(taskRoutes(deps))
    .use(daemonRoutes(deps))
    .use(drainRoutes(deps))
    .use(logRoutes(deps))
    .use(metricsRoutes(deps))
    .use(adminRoutes(deps));
  return {
    /** The Elysia instance, for its type and routes. Its own `handle` knows no peer: remote. */
    elysia: app,
    fetch(request: Request, remoteAddress: string): Promise<Response> {
      peers.set(request, remoteAddress);
      return app.handle(request);
    },
  };
}

export type HttpApp = ReturnType<typeof createHttpApp>;
