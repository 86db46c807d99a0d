/**
 * The API description: a UI at /swagger and the OpenAPI 3.1 document at
 * /swagger/json, generated from the routes' TypeBox models (never `fromTypes()`,
 * which would run the TypeScript compiler inside the binary). The UI works
 * offline: Scalar's standalone bundle is embedded in the binary and served at
 * /swagger/scalar.js, and every Scalar feature that would reach the internet on
 * its own is switched off (see SCALAR_CONFIG).
 */
import { openapi } from "@elysiajs/openapi";
import { ScalarRender } from "@elysiajs/openapi/scalar";
import { Elysia } from "elysia";
// The package's `exports` do not list its browser bundle, hence the path into node_modules.
// `with { type: "file" }` yields the file's path (in the binary, an embedded /$bunfs path);
// the bundle has no type declarations, so TypeScript cannot see that this is a string.
// @ts-expect-error TS7016: no declaration file for the UMD bundle
import scalarBundle from "../../node_modules/@scalar/api-reference/dist/browser/standalone.js" with {
  type: "file",
};
import { CloseCode, CONTROL_COMMANDS, ERROR_CODES, MAX_CAPACITY } from "../protocol/messages.ts";
import { ELYSIA_CONFIG } from "./config.ts";

const SCALAR_JS_FILE: string = scalarBundle;

/**
 * The plugin types Scalar's options as its parsed config (every default filled
 * in) and from an older @scalar/types than the bundle, which lacks `agent`.
 */
type ScalarOptions = NonNullable<NonNullable<Parameters<typeof openapi>[0]>["scalar"]>;
type ScalarPageOptions = Partial<ScalarOptions> & {
  agent?: { disabled?: boolean };
  mcp?: { disabled?: boolean };
};

/**
 * Relative, like the spec URL the plugin writes (`swagger/json`), so the page
 * also works behind a reverse proxy that mounts the relay under a prefix.
 */
export const SCALAR_JS_URL = "swagger/scalar.js";

/**
 * Scalar 1.72's standalone.js is one self-contained UMD file (no chunks, no
 * dynamic imports but the opt-in `plugins`). What it would fetch by default,
 * and why each is off:
 * - fonts from fonts.scalar.com (`withDefaultFonts`): system fonts instead;
 * - "Try it" requests through proxy.scalar.com whenever the page is not on
 *   localhost (`proxyUrl` undefined): "" sends them straight to the relay;
 * - the AI agent chat (api.scalar.com), "Generate MCP", and telemetry;
 * - the developer toolbar, whose Share and Deploy upload the document.
 */
const SCALAR_CONFIG = {
  cdn: SCALAR_JS_URL,
  withDefaultFonts: false,
  proxyUrl: "",
  telemetry: false,
  agent: { disabled: true },
  mcp: { disabled: true },
  showDeveloperTools: "never",
} satisfies ScalarPageOptions;

const closeCodes = [
  [CloseCode.normal, "normal close (upstream: manual reconnect)"],
  [CloseCode.goingAway, "the relay is shutting down"],
  [CloseCode.tooBig, "frame larger than MAKIMA_RELAY_MAX_FRAME_BYTES (no error frame)"],
  [CloseCode.unauthenticated, "not authenticated: bad key, wrong first frame or auth timeout"],
  [CloseCode.silent, "the daemon was silent longer than the liveness timeout"],
  [CloseCode.replaced, "replaced by a newer connection with the same machineId"],
] as const;

const errorCodes: Record<(typeof ERROR_CODES)[number], string> = {
  badMessage:
    "not JSON, not an object, no string `type`, a field of the wrong type, a binary frame, or a second `authenticate`",
  unauthorized: "wrong API key, or no `authenticate` within the auth timeout (then close 4401)",
  notYourTask: "the `taskId` is not dispatched to this daemon; the frame is not forwarded",
  rateLimited: "over the per-daemon frame rate; frames are dropped (at most one notice a second)",
};

const WS_PROTOCOL = `Daemons (and child relays) connect to \`/ws/daemon\` on the HTTP port. Bun terminates the socket itself, not this HTTP app, so frames are relayed byte for byte.

**Frames.** One JSON object per WebSocket text frame, with a string \`type\`; field names are camelCase. Fields the relay does not know are forwarded unchanged. Binary frames are refused.

**Handshake.** The first frame must be \`authenticate\` (schema \`WsAuthenticate\`), within the auth timeout (default 10 s). The answer is \`authenticated\` {daemonId}, or an \`error\` frame and close 4401. Before authentication every problem is fatal; after it none is.

| daemon → relay | what the relay does |
|---|---|
| \`authenticate\` | first frame only; never forwarded |
| \`heartbeat\` | refreshes liveness; the first one after (re)authenticating settles the tasks held before it (unlisted ones are lost); never forwarded |
| \`taskStatusChange\` | records the reported status; forwarded |
| \`taskOutput\`, \`taskProgress\`, any type with a \`taskId\` | forwarded verbatim |
| \`taskComplete\` | frees the slot, records completed or failed; forwarded |
| \`capacityUpdate\` | child relays only: sets the connection's capacity; never forwarded |
| any other type without \`taskId\` | forwarded verbatim |

A frame naming a task that is not dispatched to this daemon gets \`error\` \`notYourTask\` and is not forwarded.

| relay → daemon | meaning |
|---|---|
| \`authenticated\` | handshake done, with the id the relay gave the connection |
| \`spawnTask\` | run this task (the least-loaded daemon with a free slot gets it; otherwise it waits in a FIFO queue) |
| \`pauseTask\`, \`resumeTask\`, \`interruptTask\`, \`sendMessage\` | control commands for a task the daemon holds (held and delivered after the spawn while the task is queued) |
| \`error\` | {code, message}; see \`WsError\` |
| any other server frame | broadcast to every authenticated daemon |

**Error codes.**

${ERROR_CODES.map((c) => `- \`${c}\`: ${errorCodes[c]}`).join("\n")}

**Close codes.**

| code | when |
|---|---|
${closeCodes.map(([code, why]) => `| ${code} | ${why} |`).join("\n")}

The message shapes are the \`Ws…\` schemas: \`WsDaemonToRelay\` and \`WsRelayToDaemon\` list them by direction.`;

type JsonSchema = Record<string, unknown>;

const str = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: "string",
  description,
  ...extra,
});
const taskId = str("The server's task id (1 to 512 characters)", { minLength: 1, maxLength: 512 });
const capacity = (description: string): JsonSchema => ({
  type: "integer",
  minimum: 0,
  maximum: MAX_CAPACITY,
  description,
});

/** One frame: a `type` constant, the fields the relay reads, and room for any other field. */
function frame(
  type: string | readonly string[],
  description: string,
  properties: Record<string, JsonSchema>,
  required: readonly string[] = [],
): JsonSchema {
  const typeSchema =
    typeof type === "string" ? { const: type } : { type: "string", enum: [...type] };
  return {
    type: "object",
    description,
    properties: { type: typeSchema, ...properties },
    required: ["type", ...required],
    additionalProperties: true,
  };
}

const WS_FRAMES = {
  WsAuthenticate: frame(
    "authenticate",
    "Daemon → relay, first frame. Never forwarded.",
    {
      apiKey: str(
        "A key the relay accepts (its own upstream key or a daemon key); compared in constant time",
      ),
      machineId: str(
        "Stable id of the machine; a second connection with the same id replaces the first (close 4409) and takes over its tasks",
        { minLength: 1, maxLength: 256 },
      ),
      hostname: str("Shown in /daemons and the logs", { maxLength: 256 }),
      maxConcurrentTasks: capacity("How many tasks the daemon runs at once"),
      role: str("`relay` for a child relay: exempt from the per-connection rate limit", {
        examples: ["relay"],
      }),
    },
    ["apiKey", "machineId", "hostname", "maxConcurrentTasks"],
  ),
  WsHeartbeat: frame(
    "heartbeat",
    "Daemon → relay. Refreshes liveness; the first one after (re)authentication is authoritative for the tasks held before it. Never forwarded (the relay sends its own upstream).",
    {
      activeTasks: {
        type: "array",
        items: { type: "string" },
        description: "Tasks the daemon runs",
      },
    },
    ["activeTasks"],
  ),
  WsTaskStatusChange: frame(
    "taskStatusChange",
    "Daemon → relay → server. Recorded as the task's last reported status.",
    { taskId, oldStatus: str("Previous status"), newStatus: str("New status") },
    ["taskId", "newStatus"],
  ),
  WsTaskOutput: frame(
    "taskOutput",
    "Daemon → relay → server, forwarded verbatim (other fields are the daemon's).",
    { taskId },
    ["taskId"],
  ),
  WsTaskProgress: frame(
    "taskProgress",
    "Daemon → relay → server, forwarded verbatim (other fields are the daemon's).",
    { taskId },
    ["taskId"],
  ),
  WsTaskComplete: frame(
    "taskComplete",
    "Daemon → relay → server. Frees the daemon's slot. The relay also sends its own upstream: error `daemon lost` or `interrupted before dispatch`.",
    {
      taskId,
      success: { type: "boolean", description: "false: the task failed" },
      error: { type: ["string", "null"], description: "Why it failed" },
    },
    ["taskId", "success"],
  ),
  WsCapacityUpdate: frame(
    "capacityUpdate",
    "Child relay → relay: sets this connection's capacity. Never forwarded.",
    { maxConcurrentTasks: capacity("The child's new total capacity") },
    ["maxConcurrentTasks"],
  ),
  WsAuthenticated: frame(
    "authenticated",
    "Relay → daemon: the handshake succeeded.",
    { daemonId: str("The id the relay gave this connection (a UUID)", { format: "uuid" }) },
    ["daemonId"],
  ),
  WsSpawnTask: frame(
    "spawnTask",
    "Server → relay → daemon, forwarded unchanged; every other field is the server's.",
    { taskId, taskName: str("Human-readable name") },
    ["taskId"],
  ),
  WsControlCommand: frame(
    CONTROL_COMMANDS,
    "Server → relay → the daemon holding the task. `interruptTask` for a queued task cancels it instead.",
    { taskId, message: str("`sendMessage` only: the message for the task") },
    ["taskId"],
  ),
  WsError: frame(
    "error",
    "Relay → daemon. After authentication the connection stays open; before it, close 4401 follows.",
    {
      code: {
        type: "string",
        enum: [...ERROR_CODES],
        description: ERROR_CODES.map((c) => `${c}: ${errorCodes[c]}`).join("; "),
      },
      message: str("Human-readable detail"),
    },
    ["code", "message"],
  ),
} satisfies Record<string, JsonSchema>;

const ref = (name: keyof typeof WS_FRAMES) => ({ $ref: `#/components/schemas/${name}` });

const WS_SCHEMAS: Record<string, JsonSchema> = {
  ...WS_FRAMES,
  WsDaemonToRelay: {
    description: "Every frame a daemon sends on /ws/daemon",
    oneOf: (
      [
        "WsAuthenticate",
        "WsHeartbeat",
        "WsTaskStatusChange",
        "WsTaskOutput",
        "WsTaskProgress",
        "WsTaskComplete",
        "WsCapacityUpdate",
      ] as const
    ).map(ref),
  },
  WsRelayToDaemon: {
    description: "Every frame the relay sends a daemon on /ws/daemon",
    oneOf: (["WsAuthenticated", "WsSpawnTask", "WsControlCommand", "WsError"] as const).map(ref),
  },
};

const upgradeError = (description: string) => ({
  description,
  content: {
    "application/json": {
      schema: {
        type: "object" as const,
        properties: { error: { type: "string" as const, description: "What went wrong" } },
        required: ["error"],
      },
    },
  },
});

const header = (name: string, description: string, example: string) => ({
  name,
  in: "header" as const,
  required: true,
  description,
  schema: { type: "string" as const, description, examples: [example] },
});

/** The socket endpoint is not an Elysia route, so it is described by hand. */
const WS_PATH = {
  get: {
    tags: ["websocket"],
    summary: "Daemon WebSocket",
    description: WS_PROTOCOL,
    operationId: "daemonWebSocket",
    parameters: [
      header("Upgrade", "Must be `websocket` (RFC 6455 §4.1)", "websocket"),
      header("Connection", "Must contain `Upgrade`", "Upgrade"),
      header("Sec-WebSocket-Key", "Random 16-byte nonce, base64", "dGhlIHNhbXBsZSBub25jZQ=="),
      header("Sec-WebSocket-Version", "Must be 13", "13"),
    ],
    responses: {
      "101": {
        description:
          "Switching Protocols: the WebSocket is open. Frames: `WsDaemonToRelay` in, `WsRelayToDaemon` out.",
      },
      "400": upgradeError("The upgrade failed"),
      "426": upgradeError("Not a WebSocket upgrade request"),
      "503": upgradeError("Too many sockets awaiting `authenticate`; retry later"),
    },
  },
};

/** The bearer scheme of MAKIMA_RELAY_ADMIN_TOKEN, as an operation's `security`. */
export const ADMIN_SECURITY = [{ adminToken: [] }];

export function openapiDocs(version: string) {
  const info = {
    title: "makima-relay",
    version,
    description:
      "Edge relay between a Makima server and many Makima daemons: status and history API.",
  };
  // The plugin's own page (provider "scalar") is one Response built at startup and returned to
  // every request; once Elysia has re-wrapped its body to add the CORS headers, the next load
  // fails with "Body object should not be disturbed or locked". So the plugin serves only the
  // spec, and the page below is a string rendered once by the plugin's own ScalarRender.
  const page = ScalarRender(
    info,
    // Scalar fills in its defaults in the browser; the page only carries these.
    { url: "swagger/json", ...SCALAR_CONFIG } as unknown as ScalarOptions,
  );
  const docs = openapi({
    path: "/swagger",
    specPath: "/swagger/json",
    provider: null,
    documentation: {
      info,
      tags: [
        { name: "status", description: "Health and status of the relay" },
        { name: "tasks", description: "Tasks the relay received from the server" },
        { name: "daemons", description: "Connected daemons and child relays" },
        { name: "logs", description: "Connection log" },
        { name: "admin", description: "Operator commands" },
        { name: "metrics", description: "Prometheus metrics" },
        { name: "websocket", description: WS_PROTOCOL },
      ],
      components: {
        schemas: WS_SCHEMAS,
        securitySchemes: {
          adminToken: {
            type: "http",
            scheme: "bearer",
            description:
              "MAKIMA_RELAY_ADMIN_TOKEN. Write routes need it (without one configured: loopback clients only); read routes too when MAKIMA_RELAY_PROTECT_READS=true. /health never does.",
          },
        },
      },
      paths: { "/ws/daemon": WS_PATH },
    },
  });
  // `hide`: the page and its script are the docs, not part of the API.
  return new Elysia({ ...ELYSIA_CONFIG, name: "relay.openapi" })
    .use(docs)
    .get(
      "/swagger",
      () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } }),
      { detail: { hide: true } },
    )
    .get(
      "/swagger/scalar.js",
      () =>
        new Response(Bun.file(SCALAR_JS_FILE), {
          headers: {
            "content-type": "text/javascript; charset=utf-8",
            "cache-control": "public, max-age=86400",
          },
        }),
      { detail: { hide: true } },
    );
}
