/**
 * CORS from an allow-list (`MAKIMA_RELAY_CORS_ORIGINS`, empty by default).
 *
 * - A listed origin is echoed (`Access-Control-Allow-Origin: <origin>`, `Vary: Origin`)
 *   on every route.
 * - `*` in the list gives `Access-Control-Allow-Origin: *` on read routes only:
 *   a write route, its preflight included, allows explicitly listed origins and no others.
 * - Any other origin gets no CORS headers at all, and a 403 `{error}` for a preflight.
 *
 * CORS only stops a page from reading the answer; a "simple" cross-site POST
 * still reaches the handler (Fetch standard, CORS-safelisted requests). So a
 * write carrying an Origin that is neither listed nor the relay's own is
 * refused outright: without an admin token, writes trust loopback peers, and a
 * page open in the operator's browser is one.
 */
import { Elysia } from "elysia";
import { routeKind } from "./access.ts";
import { ELYSIA_CONFIG } from "./config.ts";
import { ForbiddenError } from "./errors.ts";

const ALLOW_HEADERS = "Authorization, Content-Type";
const READ_METHODS = "GET, HEAD, OPTIONS";
const ALL_METHODS = "GET, HEAD, POST, OPTIONS";
/** Seconds a browser may cache a preflight answer. */
const PREFLIGHT_MAX_AGE = "600";

/** The Access-Control-Allow-Origin value for `origin`, or null for none. */
export function corsAllowOrigin(
  origins: readonly string[],
): (origin: string, write: boolean) => string | null {
  // Origins are scheme://host[:port]; a trailing slash or upper case in the setting is a typo.
  const listed = new Set(
    origins.filter((o) => o !== "*").map((o) => o.replace(/\/+$/, "").toLowerCase()),
  );
  const anyForReads = origins.includes("*");
  return (origin, write) => {
    if (listed.has(origin.toLowerCase())) return origin;
    return anyForReads && !write ? "*" : null;
  };
}

export function cors(origins: readonly string[]) {
  const allow = corsAllowOrigin(origins);
  // onRequest runs before routing for the whole app, so the headers also land on 401s, 404s and errors.
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.cors" }).onRequest(({ request, set }) => {
    const origin = request.headers.get("origin");
    if (request.method === "OPTIONS") return preflight(request, origin, allow);
    if (origin === null) return;
    const write = routeKind(request.method, new URL(request.url).pathname) === "write";
    const allowed = allow(origin, write);
    if (allowed !== null) {
      set.headers["access-control-allow-origin"] = allowed;
      if (allowed !== "*") set.headers.vary = "Origin";
    } else if (write && origin !== new URL(request.url).origin) {
      throw new ForbiddenError("origin not allowed to call write routes");
    }
  });
}

function preflight(
  request: Request,
  origin: string | null,
  allow: ReturnType<typeof corsAllowOrigin>,
): Response {
  // Without an Origin it is a plain OPTIONS, not a CORS preflight: nothing to allow.
  if (origin === null) return new Response(null, { status: 204 });
  const method = request.headers.get("access-control-request-method") ?? "GET";
  const allowed = allow(origin, routeKind(method, new URL(request.url).pathname) === "write");
  if (allowed === null) throw new ForbiddenError("origin not allowed");
  return new Response(null, {
    status: 204,
    headers: {
      "access-control-allow-origin": allowed,
      "access-control-allow-methods": allowed === "*" ? READ_METHODS : ALL_METHODS,
      "access-control-allow-headers": ALLOW_HEADERS,
      "access-control-max-age": PREFLIGHT_MAX_AGE,
      ...(allowed === "*" ? {} : { vary: "Origin" }),
    },
  });
}
