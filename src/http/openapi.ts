/**
 * The API description: a UI at /swagger and the OpenAPI 3.1 document at
 * /swagger/json, generated from the routes' TypeBox models (never `fromTypes()`,
 * which would run the TypeScript compiler inside the binary).
 */
import { openapi } from "@elysiajs/openapi";

const WS_PROTOCOL = [
  "Daemons connect to `/ws/daemon` (served by Bun directly, not by this HTTP app).",
  "One JSON object per text frame, with a string `type`; unknown fields are forwarded unchanged.",
  "The first frame must be `authenticate` {apiKey, machineId, hostname, maxConcurrentTasks}",
  "within the auth timeout; the answer is `authenticated` {daemonId}, or an `error` frame and close 4401.",
  "Daemons then send `heartbeat`, `taskStatusChange`, `taskOutput`, `taskProgress` and `taskComplete`;",
  "the relay delivers `spawnTask`, `pauseTask`, `resumeTask`, `interruptTask` and `sendMessage`.",
  "Close codes: 1001 shutdown, 1009 frame too large, 4401 unauthenticated, 4408 silent, 4409 replaced.",
].join(" ");

/** The bearer scheme of MAKIMA_RELAY_ADMIN_TOKEN, as an operation's `security`. */
export const ADMIN_SECURITY = [{ adminToken: [] }];

export function openapiDocs(version: string) {
  return openapi({
    path: "/swagger",
    specPath: "/swagger/json",
    documentation: {
      info: {
        title: "makima-relay",
        version,
        description:
          "Edge relay between a Makima server and many Makima daemons: status and history API.",
      },
      tags: [
        { name: "status", description: "Health and status of the relay" },
        { name: "tasks", description: "Tasks the relay received from the server" },
        { name: "daemons", description: "Connected daemons and child relays" },
        { name: "logs", description: "Connection log" },
        { name: "admin", description: "Operator commands" },
        { name: "websocket", description: WS_PROTOCOL },
      ],
      components: {
        securitySchemes: {
          adminToken: {
            type: "http",
            scheme: "bearer",
            description:
              "MAKIMA_RELAY_ADMIN_TOKEN. Write routes need it (without one configured: loopback clients only); read routes too when MAKIMA_RELAY_PROTECT_READS=true. /health never does.",
          },
        },
      },
      // The socket endpoint is not an Elysia route, so it is described by hand.
      paths: {
        "/ws/daemon": {
          get: {
            tags: ["websocket"],
            summary: "Daemon WebSocket",
            description: WS_PROTOCOL,
            responses: {
              "101": { description: "Switching Protocols: the WebSocket is open" },
              "400": { description: "Not a WebSocket upgrade request" },
            },
          },
        },
      },
    },
  });
}
