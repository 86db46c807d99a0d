/**
 * GET /daemons: who is connected right now, and which machines are drained
 * (drain.ts). Built from DaemonView, so no key or socket can leak. DELETE /daemons/:machineId: an operator releases a
 * machineId's binding to its key (a write route: access.ts guards it like
 * POST /reconnect). Bindings are never listed: their fingerprints stay inside.
 */
import { Elysia, t } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";
import type { DaemonView, HttpDeps } from "./deps.ts";
import { BadRequestError } from "./errors.ts";
import { ErrorBody, Int, IsoTime, iso, isoOrNull, OneOf } from "./models.ts";
import { ADMIN_SECURITY } from "./openapi.ts";

export const DaemonBody = t.Object({
  daemonId: t.String({ description: "The id the relay gave this connection" }),
  machineId: t.String(),
  hostname: t.String(),
  maxConcurrentTasks: Int({
    minimum: 0,
    description: "Its capacity (capacityUpdate may change it)",
  }),
  activeTasks: Int({ minimum: 0, description: "How many tasks it holds" }),
  taskIds: t.Array(t.String()),
  connectedAt: t.String({ format: "date-time" }),
  lastHeartbeat: IsoTime,
  role: OneOf(["daemon", "relay"], { description: "relay: a child relay (self-declared)" }),
  draining: t.Boolean({
    description:
      "Its machine is drained (POST /daemons/:machineId/drain): no new task; what it holds runs on",
  }),
});

export const DaemonList = t.Object({
  daemons: t.Array(DaemonBody),
  drainingMachines: t.Array(t.String(), {
    description: "Every drained machineId, connected or not (a drain applies when it connects)",
  }),
});

export const BindingReleased = t.Object({
  machineId: t.String(),
  released: t.Literal(true),
  disconnected: t.Boolean({
    description:
      "Whether a connected daemon with this machineId was disconnected (4401); only with ?disconnect=true",
  }),
  message: t.String(),
});

const ReleaseQuery = t.Object(
  {
    disconnect: t.Optional(
      t.String({
        description:
          "true: also close the connected daemon with this machineId (4401; its tasks wait out the grace period). Default false: it stays connected.",
        examples: ["true"],
      }),
    ),
  },
  { additionalProperties: true },
);

function parseFlag(name: string, raw: string | undefined): boolean {
  if (raw === undefined || raw === "false") return false;
  if (raw === "true") return true;
  throw new BadRequestError(`'${name}' must be true or false, got '${raw}'`);
}

function daemonBody(d: DaemonView, drained: ReadonlySet<string>) {
  return {
    daemonId: d.daemonId,
    machineId: d.machineId,
    hostname: d.hostname,
    maxConcurrentTasks: d.maxConcurrentTasks,
    activeTasks: d.taskIds.length,
    taskIds: d.taskIds,
    connectedAt: iso(d.connectedAt),
    lastHeartbeat: isoOrNull(d.lastHeartbeat),
    role: d.role,
    draining: drained.has(d.machineId),
  };
}

export function daemonRoutes(deps: HttpDeps) {
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.daemons" })
    .get(
      "/daemons",
      () => {
        const drainingMachines = deps.drainingMachines();
        const drained = new Set(drainingMachines);
        return { daemons: deps.listDaemons().map((d) => daemonBody(d, drained)), drainingMachines };
      },
      {
        response: { 200: DaemonList },
        detail: {
          summary: "Connected daemons",
          description:
            "Authenticated daemons and child relays, with the tasks each holds and whether its machine is drained.",
          tags: ["daemons"],
        },
      },
    )
    .delete(
      "/daemons/:machineId",
      ({ params, query, status }) => {
        const disconnect = parseFlag("disconnect", query.disconnect);
        const result = deps.releaseBinding(params.machineId, disconnect);
        if (!result.ok) return status(404, { error: "no binding for this machineId" });
        return {
          machineId: params.machineId,
          released: true as const,
          disconnected: result.value.disconnected,
          message: result.value.disconnected
            ? "binding released; the connected daemon was disconnected (4401)"
            : "binding released; the next key to authenticate with this machineId takes it",
        };
      },
      {
        params: t.Object({ machineId: t.String({ description: "The daemon's machineId" }) }),
        query: ReleaseQuery,
        // No body is read; a junk one must not fail the request (as POST /reconnect).
        parse: () => ({}),
        response: {
          200: BindingReleased,
          400: ErrorBody,
          401: ErrorBody,
          403: ErrorBody,
          404: ErrorBody,
        },
        detail: {
          summary: "Release a machineId's binding to its key",
          description:
            "A machineId belongs to the key it first authenticated with; a daemon with another key is refused (4401) and logged as `machine_takeover_refused`. After rotating a key, release the bindings of the machines that used it: the next key to authenticate with the machineId takes it. A connected daemon stays connected unless `disconnect=true`. 404 when the machineId has no binding. Needs `Authorization: Bearer <MAKIMA_RELAY_ADMIN_TOKEN>` (401 without it); with no token configured, only loopback clients may call it (403 otherwise).",
          tags: ["daemons"],
          security: ADMIN_SECURITY,
        },
      },
    );
}
