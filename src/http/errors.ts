/**
 * One place that turns failures into JSON `{error}` responses. Handlers throw
 * `BadRequestError` for bad input; Elysia's own codes (NOT_FOUND, VALIDATION,
 * PARSE) are mapped here too, so no client ever sees Elysia's default text or
 * a validation dump.
 */
import { Elysia } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";

/** Bad client input, with a message that names the parameter. */
export class BadRequestError extends Error {
  readonly code = "BAD_REQUEST" as const;
  readonly status = 400;
}

/** Where bugs go: a 500 tells the client nothing, so the operator must hear of it. */
export type ErrorReporter = (error: unknown, where: { method: string; path: string }) => void;

export function errorHandling(report?: ErrorReporter) {
  return (
    new Elysia({ ...ELYSIA_CONFIG, name: "relay.errors" })
      .error({ BAD_REQUEST: BadRequestError })
      // Global: it must cover every plugin's routes and the router's own 404.
      .onError({ as: "global" }, ({ code, error, status, request, path }) => {
        switch (code) {
          case "BAD_REQUEST":
            return status(400, { error: error.message });
          case "NOT_FOUND":
            return status(404, { error: "Not found" });
          case "PARSE":
            return status(400, { error: "Malformed request body" });
          case "VALIDATION":
            // A response that fails its own schema is our bug, not the client's.
            if (error.type !== "response") {
              return status(400, { error: validationMessage(error.type, error.valueError) });
            }
            report?.(error, { method: request.method, path });
            return status(500, { error: "Internal error" });
          default:
            report?.(error, { method: request.method, path });
            return status(500, { error: "Internal error" });
        }
      })
  );
}

/** "invalid query parameter 'limit': Expected string" (e.g. a repeated parameter), from TypeBox's first error. */
function validationMessage(
  on: string,
  first: { path?: string; message?: string } | undefined,
): string {
  const name = first?.path?.replace(/^\//, "").replaceAll("/", ".") || "(root)";
  const where = on === "query" ? "query parameter" : on === "params" ? "path parameter" : on;
  return `invalid ${where} '${name}': ${first?.message ?? "does not match the schema"}`;
}
