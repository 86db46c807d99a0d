/**
 * POST /reconnect: drop the upstream link and dial again with the attempt
 * counter reset. A write route, so the access guard (access.ts) already asked
 * for the admin token, or a loopback peer without one, before this runs.
 */
import { Elysia, t } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";
import type { HttpDeps } from "./deps.ts";
import { ErrorBody } from "./models.ts";
import { ADMIN_SECURITY } from "./openapi.ts";

export const ReconnectBody = t.Object({
  success: t.Boolean({ description: "false when the upstream is not configured" }),
  message: t.String(),
});

export function adminRoutes(deps: HttpDeps) {
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.admin" }).post(
    "/reconnect",
    () => deps.reconnect(),
    {
      // The body means nothing here. A parse hook that never reads it keeps a junk body from
      // failing the request (`parse: "none"` is not honoured by Elysia's dynamic handler).
      parse: () => ({}),
      response: { 200: ReconnectBody, 401: ErrorBody, 403: ErrorBody },
      detail: {
        summary: "Force an upstream reconnect",
        description:
          "Closes the upstream socket (1000) and reconnects at once; reconnectAttempts goes back to 0. Frames for the server wait in the outbox meanwhile. Needs `Authorization: Bearer <MAKIMA_RELAY_ADMIN_TOKEN>` (401 without it); with no token configured, only loopback clients may call it (403 otherwise).",
        tags: ["admin"],
        security: ADMIN_SECURITY,
      },
    },
  );
}
