/**
 * `makima-relay status [--url URL]`: asks a running relay for /status and
 * prints a short table. Exit code 0 when the relay is ok, 1 when it is
 * degraded or disconnected, 2 when it cannot be reached (or the arguments
 * are wrong).
 */
import { err, ok, type Result } from "../protocol/result.ts";

export const STATUS_EXIT = { ok: 0, notOk: 1, unreachable: 2 } as const;

const FETCH_TIMEOUT_MS = 3000;

/** The /status fields this command shows (see StatusBody in src/http/status.ts). */
export interface StatusDoc {
  status: "ok" | "degraded" | "disconnected";
  agentName: string;
  version: string;
  upstreamConnected: boolean;
  upstreamState: string;
  reconnectAttempts: number;
  /** The server drops each link soon after it authenticates (absent from older relays). */
  upstreamFlapping?: boolean;
  /** The relay takes no new work from its server (POST /drain; absent from older relays). */
  draining?: boolean;
  connectedDaemons: number;
  activeTasks: number;
  pendingTasks: number;
  totalTasksProcessed: number;
  lostTasks: number;
  uptimeSeconds: number;
  outbox: { frames: number; bytes: number; droppedFrames: number };
}

export function statusExitCode(doc: Pick<StatusDoc, "status">): number {
  return doc.status === "ok" ? STATUS_EXIT.ok : STATUS_EXIT.notOk;
}

export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${pad(h)}h ${pad(m)}m`;
  if (h > 0) return `${h}h ${pad(m)}m ${pad(s % 60)}s`;
  if (m > 0) return `${m}m ${pad(s % 60)}s`;
  return `${s}s`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** The table, one `label  value` line each. Pure: the tests feed it literals. */
export function formatStatus(doc: StatusDoc, url: string): string {
  const upstream = doc.upstreamConnected
    ? "connected"
    : `${doc.upstreamState}, ${plural(doc.reconnectAttempts, "reconnect attempt")}`;
  const flapping = doc.upstreamFlapping ? " (flapping: the server keeps dropping the link)" : "";
  const rows: [string, string][] = [
    ["relay", `${doc.agentName} at ${url}`],
    ["status", `${doc.status}${doc.draining ? ", draining" : ""}`],
    ["upstream", `${upstream}${flapping}`],
    ["daemons", String(doc.connectedDaemons)],
    [
      "tasks",
      `${doc.activeTasks} active, ${doc.pendingTasks} pending (${doc.totalTasksProcessed} received, ${doc.lostTasks} lost)`,
    ],
    [
      "outbox",
      `${plural(doc.outbox.frames, "frame")} (${formatBytes(doc.outbox.bytes)}), ${doc.outbox.droppedFrames} dropped`,
    ],
    ["uptime", formatUptime(doc.uptimeSeconds)],
    ["version", doc.version],
  ];
  return rows.map(([label, value]) => `${label.padEnd(10)}${value}`).join("\n");
}

/** `--url URL` or `--url=URL`; the default is the configured port on loopback. The value is the URL. */
export function parseStatusArgs(
  args: readonly string[],
  defaultUrl: string,
): Result<string, string> {
  let url = defaultUrl;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--url" || arg.startsWith("--url=")) {
      const value = arg === "--url" ? args[++i] : arg.slice("--url=".length);
      if (!value) return err("--url: missing value");
      url = value;
      continue;
    }
    return err(`status: unknown argument "${arg}" (see --help)`);
  }
  if (!/^https?:\/\//.test(url)) {
    return err(`--url: expected an http:// or https:// URL, got "${url}"`);
  }
  return ok(url.replace(/\/+$/, "").replace(/\/status$/, ""));
}

export interface StatusIo {
  fetch?: typeof fetch;
  out(line: string): void;
  err(line: string): void;
  /** Sent as a bearer token, for a relay whose reads need the admin token. */
  token?: string | null;
  timeoutMs?: number;
}

function isStatusDoc(value: unknown): value is StatusDoc {
  const v = value as StatusDoc | null;
  return (
    typeof v === "object" &&
    v !== null &&
    ["ok", "degraded", "disconnected"].includes(v.status) &&
    typeof v.outbox === "object" &&
    v.outbox !== null
  );
}

export async function runStatus(baseUrl: string, io: StatusIo): Promise<number> {
  const doFetch = io.fetch ?? fetch;
  const target = `${baseUrl}/status`;
  let doc: unknown;
  try {
    const res = await doFetch(target, {
      headers: io.token ? { authorization: `Bearer ${io.token}` } : {},
      signal: AbortSignal.timeout(io.timeoutMs ?? FETCH_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = await res.json();
  } catch (error) {
    io.err(`makima-relay status: cannot read ${target}: ${(error as Error).message}`);
    return STATUS_EXIT.unreachable;
  }
  if (!isStatusDoc(doc)) {
    io.err(`makima-relay status: ${target} did not answer with a relay status document`);
    return STATUS_EXIT.unreachable;
  }
  io.out(formatStatus(doc, baseUrl));
  return statusExitCode(doc);
}
