/** Server URL normalisation (docs/protocol.md "Frames"). */
import { err, ok, type Result } from "./result.ts";

/** The daemon WebSocket URL of a server, or why the input is not one. */
export function normaliseServerUrl(input: string): Result<string, string> {
  let parsed: URL;
  try {
    parsed = new URL(input.trim());
  } catch {
    return err("not a valid URL");
  }
  const schemes: Record<string, string> = {
    "ws:": "ws:",
    "wss:": "wss:",
    "http:": "ws:",
    "https:": "wss:",
  };
  const scheme = schemes[parsed.protocol];
  if (!scheme) return err("scheme must be ws, wss, http or https");
  parsed.protocol = scheme;
  // Drop a trailing "/" first, so ".../ws/daemon/" is not given a second /ws/daemon.
  const path = parsed.pathname.replace(/\/$/, "");
  parsed.pathname = path.endsWith("/ws/daemon") ? path : `${path}/ws/daemon`;
  // A WebSocket URL has no fragment (RFC 6455 §3); Bun's client refuses one outright.
  parsed.hash = "";
  return ok(parsed.toString());
}

/** A URL safe to log: credentials, query strings and fragments can carry secrets. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    u.hash = "";
    return u.toString();
  } catch {
    return "<invalid url>";
  }
}
