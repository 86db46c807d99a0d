/**
 * One place that turns failures into JSON `{error}` responses. Handlers throw
 * `BadRequestError` for bad input, the access guard `UnauthorizedError` and
 * `ForbiddenError`; Elysia's own codes (NOT_FOUND, VALIDATION, PARSE) are
 * mapped here too, so no client ever sees Elysia's default text or a
 * validation dump.
 */
import { Elysia } from "elysia";
import { ELYSIA_CONFIG } from "./config.ts";

/** Bad client input, with a message that names the parameter. */
export class BadRequestError extends Error {
  readonly code = "BAD_REQUEST" as const;
  readonly status = 400;
}

/** No valid bearer token where one is needed. The message never quotes the token sent. */
export class UnauthorizedError extends Error {
  readonly code = "UNAUTHORIZED" as const;
  readonly status = 401;
}

/** Refused whatever the credentials: a remote write without a token configured, an unlisted origin. */
export class ForbiddenError extends Error {
  readonly code = "FORBIDDEN" as const;
  readonly status = 403;
}

/** Where bugs go: a 500 tells the client nothing, so the operator must hear of it. */
export type ErrorReporter = (error: unknown, where: { method: string; path: string }) => void;

export function errorHandling(report?: ErrorReporter) {
  return (
    new Elysia({ ...ELYSIA_CONFIG, name: "relay.errors" })
      .error({
        BAD_REQUEST: BadRequestError,
        UNAUTHORIZED: UnauthorizedError,
        FORBIDDEN: ForbiddenError,
      })
      // Global: it must cover every plugin's routes and the router's own 404.
      .onError({ as: "global" }, ({ code, error, status, set, request, path }) => {
        switch (code) {
          case "BAD_REQUEST":
            return status(400, { error: error.message });
          case "UNAUTHORIZED":
            // RFC 6750 §3: a 401 for a bearer-protected resource names the scheme.
            set.headers["www-authenticate"] = "Bearer";
            return status(401, { error: error.message });
          case "FORBIDDEN":
            return status(403, { error: error.message });
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
