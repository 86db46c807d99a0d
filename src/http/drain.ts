/**
 * Draining, for maintenance (docs/protocol.md "Draining"): POST/DELETE
 * /daemons/:machineId/drain takes one machine out of dispatch and puts it
 * back; POST/DELETE /drain does it for the whole relay. Write routes: access.ts
 * guards them like POST /reconnect. Each call is idempotent and answers 200
 * with the state it leaves (`changed` says whether it did anything), once the
 * drain is written in the turn's batch; a drain survives reconnects and
 * restarts.
 */
import { Elysia, t } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";
import type { HttpDeps, MachineDrain, RelayDrain } from "./deps.ts";
import { ErrorBody } from "./models.ts";
import { ADMIN_SECURITY } from "./openapi.ts";

const CHANGED = t.Boolean({
  description: "False when it was already so: the call changed nothing",
});

export const MachineDrainBody = t.Object({
  machineId: t.String(),
  draining: t.Boolean({
    description:
      "true: its daemon gets no new task (what it holds runs on, commands still reach it)",
  }),
  connected: t.Boolean({
    description:
      "Whether a daemon with this machineId is connected now; a drain of one that is not applies when it connects",
  }),
  changed: CHANGED,
  message: t.String(),
});

export const RelayDrainBody = t.Object({
  draining: t.Boolean({
    description:
      "true: /ready answers 503 (reason `draining`) and, with advertised capacity `auto`, the server is told capacity 0",
  }),
  changed: CHANGED,
  message: t.String(),
});

const MachineParams = t.Object({
  machineId: t.String({ description: "The daemon's machineId (connected or not)" }),
});

const ADMIN =
  "Needs `Authorization: Bearer <MAKIMA_RELAY_ADMIN_TOKEN>` (401 without it); with no token configured, only loopback clients may call it (403 otherwise).";

const ERRORS = { 401: ErrorBody, 403: ErrorBody } as const;

function machineAnswer(r: MachineDrain) {
  const where = r.connected ? "" : " (not connected: it applies when it connects)";
  const message = r.draining
    ? `${r.changed ? "drained" : "already drained"}: no new task goes to it${where}`
    : `${r.changed ? "returned to rotation" : "not drained"}${r.changed && r.connected ? "; queued tasks may go to it now" : ""}`;
  return { ...r, message };
}

function relayAnswer(r: RelayDrain) {
  const message = r.draining
    ? `${r.changed ? "draining" : "already draining"}: not ready; queued and running tasks carry on`
    : r.changed
      ? "drain ended"
      : "not draining";
  return { ...r, message };
}

export function drainRoutes(deps: HttpDeps) {
  const machine = (on: boolean) => ({
    params: MachineParams,
    // No body is read; a junk one must not fail the request (as POST /reconnect).
    parse: () => ({}),
    response: { 200: MachineDrainBody, ...ERRORS },
    detail: {
      summary: on ? "Drain a machine" : "Return a drained machine to rotation",
      description: on
        ? `Its daemon gets no new task; the tasks it holds run on and their commands still reach it. The drain belongs to the machineId: it holds across reconnects and restarts, and may be set for a machine not connected now. ${ADMIN}`
        : `Ends a machine's drain: queued tasks are dispatched to it at once. Answers 200 (changed false) when it was not drained. ${ADMIN}`,
      tags: ["daemons"],
      security: ADMIN_SECURITY,
    },
  });
  const relay = (on: boolean) => ({
    parse: () => ({}),
    response: { 200: RelayDrainBody, ...ERRORS },
    detail: {
      summary: on ? "Drain the relay" : "End the relay's drain",
      description: on
        ? `Before maintenance: /ready answers 503 (reason \`draining\`) and /status shows \`draining: true\`; with advertised capacity \`auto\` the server is told capacity 0 (\`capacityUpdate\`), so it sends no new task. With a fixed capacity there is nothing to tell: the server keeps sending and the relay still accepts every task. Queued and running tasks carry on. Holds across restarts until DELETE /drain. \`makima-relay drain\` calls this and waits until the relay holds nothing. ${ADMIN}`
        : `Ends the drain: ready again, and the daemons' capacity is advertised again in \`auto\` mode. ${ADMIN}`,
      tags: ["admin"],
      security: ADMIN_SECURITY,
    },
  });
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.drain" })
    .post(
      "/daemons/:machineId/drain",
      ({ params }) => machineAnswer(deps.drainMachine(params.machineId, true)),
      machine(true),
    )
    .delete(
      "/daemons/:machineId/drain",
      ({ params }) => machineAnswer(deps.drainMachine(params.machineId, false)),
      machine(false),
    )
    .post("/drain", () => relayAnswer(deps.drainRelay(true)), relay(true))
    .delete("/drain", () => relayAnswer(deps.drainRelay(false)), relay(false));
}
