/**
 * POST /reconnect: drop the upstream link and dial again with the attempt
 * counter reset. The one state-changing route, so the one a future admin token
 * guards first.
 */
import { Elysia, t } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";
import type { HttpDeps } from "./deps.ts";

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
      response: { 200: ReconnectBody },
      detail: {
        summary: "Force an upstream reconnect",
        description:
          "Closes the upstream socket (1000) and reconnects at once; reconnectAttempts goes back to 0. Frames for the server wait in the outbox meanwhile.",
        tags: ["admin"],
      },
    },
  );
}
