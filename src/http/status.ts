/**
 * GET / and /status (the original's status document plus the relay's own
 * figures) and GET /health (for probes: cheap, and it stays open even when
 * reads get a token; see protocol.md "HTTP shapes").
 */
import { Elysia, t } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";
import type { HttpDeps } from "./deps.ts";
import { Int, IsoTime, isoOrNull, OneOf } from "./models.ts";
import { statusOf } from "./overall-status.ts";

export const StatusBody = t.Object({
  status: OneOf(["ok", "degraded", "disconnected"], {
    description:
      "ok: upstream authenticated and at least one daemon; degraded: upstream authenticated, no daemon; disconnected: upstream not authenticated",
  }),
  agentName: t.String(),
  upstreamConnected: t.Boolean({ description: "The upstream link is authenticated" }),
  daemonId: t.Union([t.String(), t.Null()], {
    description: "Our id at the server, once authenticated",
  }),
  lastHeartbeat: IsoTime,
  connectedDaemons: Int({ minimum: 0 }),
  activeTasks: Int({
    minimum: 0,
    description:
      "Tasks dispatched to a daemon and not ended (queued ones are pendingTasks; the relay's heartbeat lists both)",
  }),
  totalTasksProcessed: Int({ minimum: 0, description: "Distinct tasks ever received" }),
  version: t.String(),
  machineId: t.String(),
  pendingTasks: Int({ minimum: 0, description: "Queued, waiting for a free daemon slot" }),
  reconnectAttempts: Int({
    minimum: 0,
    description: "Reconnects in a row; back to 0 once a link has stayed up 30 s",
  }),
  upstreamFlapping: t.Boolean({
    description:
      "The last links were each dropped by the server within 30 s of authenticating (reconnects back off meanwhile)",
  }),
  linkDrops: Int({
    minimum: 0,
    description:
      "Authenticated upstream links that dropped without the relay asking, since start (a link that drops at every heartbeat shows here)",
  }),
  lastDisconnectAt: IsoTime,
  lastDisconnectReason: t.Union([t.String(), t.Null()], {
    description:
      'Close code and reason of the last upstream drop, e.g. "code 1009: frame too large"',
  }),
  lastConnectedAt: IsoTime,
  uptimeSeconds: Int({ minimum: 0 }),
  outbox: t.Object(
    {
      frames: Int({ minimum: 0 }),
      bytes: Int({ minimum: 0 }),
      waiting: Int({
        minimum: 0,
        description:
          "Frames for the server not sent yet (in the outbox or waiting for their commit)",
      }),
      droppedFrames: Int({
        minimum: 0,
        description: "Dropped because the outbox was full, since start",
      }),
      full: t.Boolean({
        description:
          "Over its limit with task results it may not drop: daemons are not read until it drains",
      }),
    },
    { description: "Frames held for the server while upstream is down" },
  ),
  lostTasks: Int({ minimum: 0, description: "Tasks that ended `lost` since start" }),
  draining: t.Boolean({
    description:
      "The relay drains (POST /drain): not ready, capacity 0 advertised in auto mode; queued and running tasks carry on",
  }),
  upstreamState: t.String({
    description: "unconfigured | idle | connecting | authenticating | open | backoff | stopped",
  }),
  storage: t.Object(
    {
      ok: t.Boolean({ description: "Commits to the database succeed" }),
      code: t.Union([t.String(), t.Null()], {
        description: "SQLite result code of the last failure, e.g. SQLITE_FULL",
      }),
      error: t.Union([t.String(), t.Null()]),
      since: IsoTime,
      attempts: Int({ minimum: 0, description: "Commits tried since the failure began" }),
      pendingWrites: Int({
        minimum: 0,
        description: "Writes kept in memory until a commit succeeds",
      }),
    },
    {
      description:
        "While commits fail the relay reads neither daemons nor the server and retries with backoff; nothing accepted is lost",
    },
  ),
});

export const HealthBody = t.Object({
  healthy: t.Literal(true),
  upstreamConnected: t.Boolean(),
});

export const ReadyBody = t.Object({
  ready: t.Boolean(),
  reasons: t.Array(t.String(), { description: "Why the relay cannot take work now" }),
});

function statusBody(deps: HttpDeps) {
  const up = deps.upstream();
  const c = deps.counters();
  return {
    status: statusOf(up.authenticated, c.connectedDaemons),
    agentName: deps.agentName,
    upstreamConnected: up.authenticated,
    daemonId: up.daemonId,
    lastHeartbeat: isoOrNull(up.lastHeartbeatAt),
    connectedDaemons: c.connectedDaemons,
    activeTasks: c.activeTasks,
    totalTasksProcessed: c.totalTasksProcessed,
    version: deps.version,
    machineId: deps.machineId,
    pendingTasks: c.pendingTasks,
    reconnectAttempts: up.reconnectAttempts,
    upstreamFlapping: up.flapping,
    linkDrops: up.linkDrops,
    lastDisconnectAt: isoOrNull(up.lastDisconnectAt),
    lastDisconnectReason: up.lastDisconnectReason,
    lastConnectedAt: isoOrNull(up.lastConnectedAt),
    // Clamped: a clock stepped backwards must not make the schema (minimum 0) fail.
    uptimeSeconds: Math.max(0, Math.floor((deps.clock.now() - deps.startedAt) / 1000)),
    outbox: c.outbox,
    lostTasks: c.lostTasks,
    draining: deps.relayDraining(),
    upstreamState: up.state,
    storage: c.storage.ok
      ? { ok: true, code: null, error: null, since: null, attempts: 0, pendingWrites: 0 }
      : {
          ok: false,
          code: c.storage.code,
          error: c.storage.error,
          since: isoOrNull(c.storage.since),
          attempts: c.storage.attempts,
          pendingWrites: c.storage.pendingWrites,
        },
  };
}

export function statusRoutes(deps: HttpDeps) {
  const hook = (path: string) => ({
    response: { 200: StatusBody },
    detail: {
      summary: path === "/" ? "Relay status (alias of /status)" : "Relay status",
      description:
        "Upstream link, connected daemons, task counts and outbox backlog. `status` is ok, degraded or disconnected.",
      tags: ["status"],
    },
  });
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.status" })
    .get("/", () => statusBody(deps), hook("/"))
    .get("/status", () => statusBody(deps), hook("/status"))
    .get(
      "/health",
      () => ({ healthy: true as const, upstreamConnected: deps.upstream().authenticated }),
      {
        response: { 200: HealthBody },
        detail: {
          summary: "Liveness probe",
          description: "Always 200 while the process serves HTTP; never needs a token.",
          tags: ["status"],
        },
      },
    )
    .get(
      "/ready",
      ({ set }) => {
        const reasons = deps.notReadyBecause();
        if (reasons.length > 0) set.status = 503;
        return { ready: reasons.length === 0, reasons };
      },
      {
        response: { 200: ReadyBody, 503: ReadyBody },
        detail: {
          summary: "Readiness probe",
          description:
            "200 when the relay can take daemons and work; 503 while it shuts down, while commits to its database fail (reason `storage`), while the outbox is over its limit with task results it may not drop (reason `outbox full`: daemons are not read), while sockets awaiting authentication are at their cap, when the outbox is over 90 % full, or while an operator drains the relay (reason `draining`, POST /drain). An unreachable Makima server does not make it unready: the relay still accepts daemons and keeps their work. Never needs a token.",
          tags: ["status"],
        },
      },
    );
}
