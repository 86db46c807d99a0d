/**
 * The HTTP API, composed from one plugin per feature. It does not listen: the
 * composition root calls `app.fetch(req)` from its own `Bun.serve`, which also
 * terminates /ws/daemon so that daemon frames are never coerced by Elysia.
 */
import { Elysia } from "elysia";
import { adminRoutes } from "./admin.ts";
import { ELYSIA_CONFIG } from "./config.ts";
import { cors } from "./cors.ts";
import { daemonRoutes } from "./daemons.ts";
import type { HttpDeps } from "./deps.ts";
import { errorHandling } from "./errors.ts";
import { logRoutes } from "./logs.ts";
import { openapiDocs } from "./openapi.ts";
import { statusRoutes } from "./status.ts";
import { taskRoutes } from "./tasks.ts";

export function createHttpApp(deps: HttpDeps) {
  // Cross-cutting plugins first: their hooks must wrap every route used after them.
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.http" })
    .use(cors())
    .use(errorHandling((error, where) => deps.reportError?.(error, where)))
    .use(openapiDocs(deps.version))
    .use(statusRoutes(deps))
    .use(taskRoutes(deps))
    .use(daemonRoutes(deps))
    .use(logRoutes(deps))
    .use(adminRoutes(deps));
}

export type HttpApp = ReturnType<typeof createHttpApp>;
