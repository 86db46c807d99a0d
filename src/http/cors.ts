/**
 * CORS exactly as the original relay sent it: any origin, GET/POST/OPTIONS,
 * and a 204 for every preflight. Kept in this one plugin so that tightening it
 * (an origin allow-list once reads need a token) replaces a single file.
 */
import { Elysia } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";

export const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "Content-Type, Authorization",
} as const;

export function cors() {
  // onRequest runs before routing for the whole app, so the headers also land on 404s and errors.
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.cors" }).onRequest(({ request, set }) => {
    Object.assign(set.headers, CORS_HEADERS);
    if (request.method === "OPTIONS")
      return new Response(null, { status: 204, headers: CORS_HEADERS });
  });
}
