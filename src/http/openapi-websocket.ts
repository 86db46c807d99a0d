/**
 * The daemon WebSocket in the OpenAPI document. /ws/daemon is not an Elysia
 * route (Bun terminates it, so frames stay byte-identical), so its protocol is
 * described here: the message shapes (derived from the TypeBox schemas the
 * parser checks, protocol/messages.ts), error and close codes, and the
 * upgrade responses.
 */
import {
  CloseCode,
  CONTROL_COMMANDS,
  DAEMON_TO_RELAY,
  ERROR_CODE_MEANINGS,
  ERROR_CODES,
  MAX_CHARS,
  RELAY_TO_DAEMON,
  SERVER_ONLY_TYPES,
} from "../protocol/messages.ts";

const closeCodes = [
  [CloseCode.normal, "normal close (upstream: manual reconnect)"],
  [CloseCode.goingAway, "the relay is shutting down"],
  [CloseCode.tooBig, "frame larger than MAKIMA_RELAY_MAX_FRAME_BYTES (no error frame)"],
  [CloseCode.unauthenticated, "not authenticated: bad key, wrong first frame or auth timeout"],
  [CloseCode.silent, "the daemon was silent longer than the liveness timeout"],
  [CloseCode.replaced, "replaced by a newer connection with the same machineId and key"],
] as const;

const codes = (names: readonly string[]): string => names.map((n) => `\`${n}\``).join(", ");

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
| ${codes(SERVER_ONLY_TYPES)} | server commands: \`error\` \`badMessage\`; never forwarded |
| any other type without \`taskId\` | forwarded verbatim |

A frame naming a task that is not dispatched to this daemon gets \`error\` \`notYourTask\` and is not forwarded.

| relay → daemon | meaning |
|---|---|
| \`authenticated\` | handshake done, with the id the relay gave the connection |
| \`spawnTask\` | run this task (the least-loaded daemon with a free slot gets it; otherwise it waits in a FIFO queue) |
| ${codes(CONTROL_COMMANDS)} | control commands for a task the daemon holds (held and delivered after the spawn while the task is queued) |
| \`error\` | {code, message}; see \`WsError\` |
| any other server frame | broadcast to every authenticated daemon |

**Error codes.**

${ERROR_CODES.map((c) => `- \`${c}\`: ${ERROR_CODE_MEANINGS[c]}`).join("\n")}

**Close codes.**

| code | when |
|---|---|
${closeCodes.map(([code, why]) => `| ${code} | ${why} |`).join("\n")}

The message shapes are the \`Ws…\` schemas: \`WsDaemonToRelay\` and \`WsRelayToDaemon\` list them by direction.`;

type JsonSchema = Record<string, unknown>;

/** A union of string constants, as OpenAPI tools show it best: an enum. */
function asEnum(members: JsonSchema[]): JsonSchema | null {
  const values = members.map((m) => m.const);
  return values.every((v) => typeof v === "string") ? { type: "string", enum: values } : null;
}

/** A union of bare types (`string | null`) as one `type` list. */
function asTypeList(members: JsonSchema[]): JsonSchema | null {
  const bare = members.every((m) => Object.keys(m).length === 1 && typeof m.type === "string");
  return bare ? { type: members.map((m) => m.type) } : null;
}

/**
 * A TypeBox schema as plain JSON Schema for the document: TypeBox's symbol
 * keys dropped, unions of constants or bare types folded, `maxChars` shown as
 * `maxLength`, and every object open to fields the relay does not read (it
 * forwards them unchanged).
 */
function toJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (schema === null || typeof schema !== "object") return schema;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key === MAX_CHARS ? "maxLength" : key] = toJsonSchema(value);
  }
  if (Array.isArray(out.anyOf)) {
    const { anyOf, ...rest } = out;
    const members = anyOf as JsonSchema[];
    const folded = asEnum(members) ?? asTypeList(members);
    if (folded) return { ...folded, ...rest };
  }
  if (out.type === "object") out.additionalProperties = true;
  return out;
}

const wsSchemas = (frames: Record<string, unknown>): Record<string, JsonSchema> =>
  Object.fromEntries(
    Object.entries(frames).map(([name, s]) => [`Ws${name}`, toJsonSchema(s) as JsonSchema]),
  );

const refs = (frames: Record<string, unknown>) =>
  Object.keys(frames).map((name) => ({ $ref: `#/components/schemas/Ws${name}` }));

export const WS_SCHEMAS: Record<string, JsonSchema> = {
  ...wsSchemas(DAEMON_TO_RELAY),
  ...wsSchemas(RELAY_TO_DAEMON),
  WsDaemonToRelay: {
    description: "Every frame a daemon sends on /ws/daemon",
    oneOf: refs(DAEMON_TO_RELAY),
  },
  WsRelayToDaemon: {
    description: "Every frame the relay sends a daemon on /ws/daemon",
    oneOf: refs(RELAY_TO_DAEMON),
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
