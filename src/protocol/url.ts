/** Server URL normalisation (docs/protocol.md "Frames"). */
export type UrlResult = { ok: true; url: string } | { ok: false; reason: string };

export function normaliseServerUrl(input: string): UrlResult {
  let parsed: URL;
  try {
    parsed = new URL(input.trim());
  } catch {
    return { ok: false, reason: "not a valid URL" };
  }
  const schemes: Record<string, string> = {
    "ws:": "ws:",
    "wss:": "wss:",
    "http:": "ws:",
    "https:": "wss:",
  };
  const scheme = schemes[parsed.protocol];
  if (!scheme) return { ok: false, reason: "scheme must be ws, wss, http or https" };
  parsed.protocol = scheme;
  // Drop a trailing "/" first, so ".../ws/daemon/" is not given a second /ws/daemon.
  const path = parsed.pathname.replace(/\/$/, "");
  parsed.pathname = path.endsWith("/ws/daemon") ? path : `${path}/ws/daemon`;
  // A WebSocket URL has no fragment (RFC 6455 §3); Bun's client refuses one outright.
  parsed.hash = "";
  return { ok: true, url: parsed.toString() };
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
