/**
 * Who may call which route. Routes are classed by method, not listed one by
 * one, so a write route added later is guarded without anyone remembering to:
 *
 * - probe (GET/HEAD /health, /ready): always open; probes carry no credentials.
 * - read (any other GET/HEAD, /swagger included): open, or with `protectReads`
 *   guarded like writes.
 * - write (every other method but OPTIONS): with an admin token, a matching
 *   `Authorization: Bearer` (else 401); without one, loopback peers that
 *   address the relay as localhost or a loopback address only (else 403).
 * - OPTIONS: CORS preflights, answered by the cors plugin before this guard.
 *
 * The peer address comes from the socket (`Bun.serve`'s `requestIP`), never
 * from X-Forwarded-For or Forwarded: any client can send those headers, so
 * trusting them would let a remote caller claim to be 127.0.0.1. A relay behind
 * a reverse proxy sees the proxy's address; set the admin token there.
 */
import { Elysia } from "elysia";
import { createKeyCheck } from "../core/key-check.ts";
import { ELYSIA_CONFIG } from "./config.ts";
import { ForbiddenError, UnauthorizedError } from "./errors.ts";
import { isLoopback, isLoopbackHost } from "./loopback.ts";

export interface HttpSecurity {
  /**
   * `MAKIMA_RELAY_ADMIN_TOKEN`; null: guarded routes answer loopback peers only.
   * Read at every guarded request, so a getter here follows a reload.
   */
  readonly adminToken: string | null;
  /** `MAKIMA_RELAY_CORS_ORIGINS`; `*` allows any origin on read routes only. */
  corsOrigins: readonly string[];
  /** `MAKIMA_RELAY_PROTECT_READS`: guard read routes (all but /health) like writes. */
  protectReads: boolean;
}

export type RouteKind = "probe" | "read" | "write" | "preflight";

/** Open whatever the settings (protocol.md, "HTTP shapes"). Both spellings reach the route. */
const PROBE_PATHS = new Set(["/health", "/health/", "/ready", "/ready/"]);

export function routeKind(method: string, path: string): RouteKind {
  if (method === "OPTIONS") return "preflight";
  if (method === "GET" || method === "HEAD") return PROBE_PATHS.has(path) ? "probe" : "read";
  return "write";
}

/** The credentials of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235 §2.1). */
export function bearerToken(header: string | null): string | null {
  const match = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
  return match?.[1] ?? null;
}

export const REMOTE_WRITE_REFUSED =
  "write routes answer only to loopback clients; set MAKIMA_RELAY_ADMIN_TOKEN to use them remotely";
const REMOTE_READ_REFUSED =
  "read routes are protected and answer only to loopback clients; set MAKIMA_RELAY_ADMIN_TOKEN to use them remotely";

/**
 * `peerOf` gives the socket's remote address for a request ("" when unknown,
 * which is never loopback). Runs in onRequest, before routing, so unknown paths
 * are guarded too and say nothing about which routes exist.
 */
export function accessGuard(security: HttpSecurity, peerOf: (request: Request) => string) {
  const tokenCheck = currentTokenCheck(security);
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.access" }).onRequest(({ request }) => {
    const kind = routeKind(request.method, new URL(request.url).pathname);
    if (kind === "probe" || kind === "preflight") return;
    if (kind === "read" && !security.protectReads) return;
    const tokenMatches = tokenCheck();
    if (tokenMatches) {
      // Neither message quotes what was sent: the header may hold a real (other) secret.
      const token = bearerToken(request.headers.get("authorization"));
      if (token === null)
        throw new UnauthorizedError("this route needs Authorization: Bearer <admin token>");
      if (!tokenMatches(token)) throw new UnauthorizedError("invalid admin token");
      return;
    }
    if (!isLoopback(peerOf(request))) {
      throw new ForbiddenError(kind === "write" ? REMOTE_WRITE_REFUSED : REMOTE_READ_REFUSED);
    }
    // A loopback peer that names another site as Host is a browser tricked by DNS rebinding.
    // Bun builds request.url from the Host header, so its host is what the caller asked for.
    if (!isLoopbackHost(new URL(request.url).host)) {
      throw new ForbiddenError(
        "without MAKIMA_RELAY_ADMIN_TOKEN, guarded routes answer only requests addressed to localhost or a loopback address",
      );
    }
  });
}

/** The check for the token in force, rebuilt only when the token changes (a reload). */
function currentTokenCheck(security: HttpSecurity): () => ((token: string) => boolean) | null {
  let checked: string | null = null;
  let check: ((token: string) => boolean) | null = null;
  return () => {
    const token = security.adminToken;
    if (token !== checked) {
      checked = token;
      check = token ? createKeyCheck([token]) : null;
    }
    return check;
  };
}
