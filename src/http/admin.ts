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

export const ReloadBody = t.Object({
  result: t.Union([t.Literal("ok"), t.Literal("error")], {
    description:
      "error: a file could not be used and kept its old value (what could be read is applied)",
  }),
  changed: t.Array(t.String(), {
    description: "The settings that changed, by variable name (never a value)",
  }),
  errors: t.Array(t.String(), {
    description: "One line per file that could not be read or parsed, naming its variable and path",
  }),
  revoked: t.Array(t.String(), {
    description:
      "MachineIds whose key is no longer accepted: their daemons were closed with 4401 and their bindings released",
  }),
});

export function adminRoutes(deps: HttpDeps) {
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.admin" })
    .post("/admin/reload", () => deps.reload(), {
      parse: () => ({}),
      response: { 200: ReloadBody, 401: ErrorBody, 403: ErrorBody },
      detail: {
        summary: "Re-read secrets and the TLS certificate",
        description:
          "What SIGHUP does: re-reads MAKIMA_API_KEY_FILE, MAKIMA_RELAY_DAEMON_KEYS_FILE, MAKIMA_RELAY_ADMIN_TOKEN_FILE and the TLS certificate and key files. A daemon whose key is no longer accepted is closed with 4401; a changed API key re-authenticates the upstream link; new TLS connections get the new certificate. A file that cannot be used keeps its old value (result `error`). Needs `Authorization: Bearer <MAKIMA_RELAY_ADMIN_TOKEN>` (401 without it); with no token configured, only loopback clients may call it (403 otherwise).",
        tags: ["admin"],
        security: ADMIN_SECURITY,
      },
    })
    .post("/reconnect", () => deps.reconnect(), {
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
    });
}
