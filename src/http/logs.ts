/** GET /logs: the connection log (connects, drops, auth failures, lost tasks), newest first. */
import { Elysia, t } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";
import type { HttpDeps } from "./deps.ts";
import { ErrorBody, Int } from "./models.ts";
import { parseLimit } from "./query.ts";

export const LOG_LIMIT_DEFAULT = 50;
export const LOG_LIMIT_MAX = 200;

export const LogEntry = t.Object({
  id: Int(),
  event: t.String({ examples: ["downstream_connect"] }),
  timestamp: t.String({ format: "date-time" }),
  details: t.Union([t.String(), t.Null()]),
});

export const LogList = t.Object({ logs: t.Array(LogEntry) });

export function logRoutes(deps: HttpDeps) {
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.logs" }).get(
    "/logs",
    ({ query }) => {
      const limit = parseLimit(query.limit, LOG_LIMIT_DEFAULT, LOG_LIMIT_MAX);
      const logs = deps.listLogs(limit).map((e) => ({
        id: e.id,
        event: e.event,
        timestamp: new Date(e.timestamp).toISOString(),
        details: e.details,
      }));
      return { logs };
    },
    {
      query: t.Object(
        {
          limit: t.Optional(
            t.String({
              description: `Entries, default ${LOG_LIMIT_DEFAULT}, clamped to 1..${LOG_LIMIT_MAX} (0 → 1). Non-numeric or negative: 400.`,
              examples: ["50"],
            }),
          ),
        },
        { additionalProperties: true },
      ),
      response: { 200: LogList, 400: ErrorBody },
      detail: {
        summary: "Connection log",
        description: "Newest first.",
        tags: ["logs"],
      },
    },
  );
}
