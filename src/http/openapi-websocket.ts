/**
 * The daemon WebSocket in the OpenAPI document. /ws/daemon is not an Elysia
 * route (Bun terminates it, so frames stay byte-identical), so its protocol is
 * described here by hand: the message shapes, error and close codes, and the
 * upgrade responses.
 */
import { CloseCode, CONTROL_COMMANDS, ERROR_CODES, MAX_CAPACITY } from "../protocol/messages.ts";

const closeCodes = [
  [CloseCode.normal, "normal close (upstream: manual reconnect)"],
  [CloseCode.goingAway, "the relay is shutting down"],
  [CloseCode.tooBig, "frame larger than MAKIMA_RELAY_MAX_FRAME_BYTES (no error frame)"],
  [CloseCode.unauthenticated, "not authenticated: bad key, wrong first frame or auth timeout"],
  [CloseCode.silent, "the daemon was silent longer than the liveness timeout"],
  [CloseCode.replaced, "replaced by a newer connection with the same machineId and key"],
] as const;

const errorCodes: Record<(typeof ERROR_CODES)[number], string> = {
  badMessage:
    "not JSON, not an object, no string `type`, a field of the wrong type or over its size limit (a status over 256 characters, a `taskComplete` error over 65,536, a heartbeat listing far more ids than the daemon's capacity), a server command sent by a daemon, a binary frame, or a second `authenticate`",
  unauthorized:
    "wrong API key, a machineId bound to another key, or no `authenticate` within the auth timeout (then close 4401)",
  notYourTask: "the `taskId` is not dispatched to this daemon; the frame is not forwarded",
  rateLimited:
    "reserved: the protocol allows it as an informational notice only; the relay sends none (a daemon over its frame or byte rate is read more slowly, nothing is dropped)",
};

export const WS_PROTOCOL = `Daemons (and child relays) connect to \`/ws/daemon\` on the HTTP port. Bun terminates the socket itself, not this HTTP app, so frames are relayed byte for byte.

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
| \`spawnTask\`, \`authenticated\`, \`pauseTask\`, \`resumeTask\`, \`interruptTask\`, \`sendMessage\` | server commands: \`error\` \`badMessage\`; never forwarded |
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
        "Stable id of the machine, bound to the key it first authenticated with: a second connection with the same id and key replaces the first (close 4409) and takes over its tasks; one with another key is refused (unauthorized, close 4401)",
        { minLength: 1, maxLength: 256 },
      ),
      hostname: str("Shown in /daemons and the logs", { maxLength: 256 }),
      maxConcurrentTasks: capacity("How many tasks the daemon runs at once"),
      role: str(
        "`relay` for a child relay: exempt from the per-connection budgets; its `authenticated` carries `maxFrameBytes`",
        {
          examples: ["relay"],
        },
      ),
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
      more: {
        type: "boolean",
        description:
          "Relay-to-relay: more parts of this heartbeat follow; the parts count as one heartbeat when the last arrives",
      },
    },
    ["activeTasks"],
  ),
  WsTaskStatusChange: frame(
    "taskStatusChange",
    "Daemon → relay → server. Recorded as the task's last reported status.",
    {
      taskId,
      oldStatus: str("Previous status", { maxLength: 256 }),
      newStatus: str("New status", { maxLength: 256 }),
    },
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
      error: { type: ["string", "null"], maxLength: 65_536, description: "Why it failed" },
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

export const WS_SCHEMAS: Record<string, JsonSchema> = {
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
export const WS_PATH = {
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
