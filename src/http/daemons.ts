/** GET /daemons: who is connected right now. Built from DaemonView, so no key or socket can leak. */
import { Elysia, t } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";
import type { DaemonView, HttpDeps } from "./deps.ts";
import { Int, IsoTime, iso, isoOrNull, OneOf } from "./models.ts";

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
});

export const DaemonList = t.Object({ daemons: t.Array(DaemonBody) });

function daemonBody(d: DaemonView) {
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
  };
}

export function daemonRoutes(deps: HttpDeps) {
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.daemons" }).get(
    "/daemons",
    () => ({ daemons: deps.listDaemons().map(daemonBody) }),
    {
      response: { 200: DaemonList },
      detail: {
        summary: "Connected daemons",
        description: "Authenticated daemons and child relays, with the tasks each holds.",
        tags: ["daemons"],
      },
    },
  );
}
