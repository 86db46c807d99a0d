/**
 * Message schemas of the Makima daemon protocol (docs/protocol.md).
 * Only the fields the relay reads are described; every schema allows extra
 * fields because the relay forwards frames verbatim and must not care.
 */
import { type Static, Type } from "@sinclair/typebox";

export const MAX_CAPACITY = 1_000_000;

/**
 * Longest `oldStatus` / `newStatus` of a `taskStatusChange`, in characters. A
 * status is a word ("running"), not a payload; the frame is a task result the
 * outbox may never drop, so its size has to be bounded where it comes in.
 */
export const MAX_STATUS_CHARS = 256;
/**
 * Longest `error` of a `taskComplete`, in characters (64 Ki): room for an
 * error message and a stack trace, not for a log. Over it the frame is refused
 * with `badMessage` (a forwarded frame is never rewritten, so it cannot be cut).
 */
export const MAX_ERROR_CHARS = 64 * 1024;
/**
 * A daemon's heartbeat may list this many ids beyond the larger of its
 * capacity and the tasks the relay holds for it; a longer listing is abnormal
 * (a daemon runs at most its capacity) and is refused with `badMessage`.
 * Child relays are exempt: their listing includes their own queue.
 */
export const HEARTBEAT_EXTRA_IDS = 1000;
/** Smallest frame limit a relay announces or accepts (`MAKIMA_RELAY_MAX_FRAME_BYTES`' minimum). */
export const MIN_FRAME_LIMIT_BYTES = 1024;

/**
 * The cap of a task-result text field (a status, an error), in characters.
 * Not JSON Schema's `maxLength`: parse.ts checks it after the schema and
 * answers with a message that names the limit, so the daemon knows what to
 * shorten; the OpenAPI document shows it as `maxLength`.
 */
export const MAX_CHARS = "maxChars";

const Capacity = (description: string) =>
  Type.Integer({ minimum: 0, maximum: MAX_CAPACITY, description });
const TaskId = Type.String({
  minLength: 1,
  maxLength: 512,
  description: "The server's task id (1 to 512 characters)",
});
/**
 * A field the relay forwards without reading it: the API describes it, the
 * parser lets any value through (refusing one would drop a frame the relay
 * has no business judging).
 */
const Unread = (type: string, description: string) =>
  Type.Optional(Type.Unknown({ type, description }));
/** A frame the relay forwards verbatim for its `taskId`; every other field is the daemon's. */
const Forwarded = <T extends string>(type: T) =>
  Type.Object(
    { type: Type.Literal(type), taskId: TaskId },
    { description: "Daemon → relay → server, forwarded verbatim (other fields are the daemon's)." },
  );

// Daemon → relay (the relay plays the server)
export const Authenticate = Type.Object(
  {
    type: Type.Literal("authenticate"),
    apiKey: Type.String({
      description:
        "A key the relay accepts (its own upstream key or a daemon key); compared in constant time",
    }),
    machineId: Type.String({
      minLength: 1,
      maxLength: 256,
      description:
        "Stable id of the machine, bound to the key it first authenticated with: a second connection with the same id and key replaces the first (close 4409) and takes over its tasks; one with another key is refused (unauthorized, close 4401)",
    }),
    hostname: Type.String({ maxLength: 256, description: "Shown in /daemons and the logs" }),
    maxConcurrentTasks: Capacity("How many tasks the daemon runs at once"),
    role: Type.Optional(
      Type.String({
        description:
          "`relay` for a child relay: exempt from the per-connection budgets; its `authenticated` carries `maxFrameBytes`",
        examples: ["relay"],
      }),
    ),
  },
  { description: "Daemon → relay, first frame. Never forwarded." },
);
export type Authenticate = Static<typeof Authenticate>;

export const Heartbeat = Type.Object(
  {
    type: Type.Literal("heartbeat"),
    activeTasks: Type.Array(Type.String(), {
      maxItems: MAX_CAPACITY,
      description: "Tasks the daemon runs",
    }),
    /** docs/protocol.md "Heartbeat parts" */
    more: Type.Optional(
      Type.Boolean({
        description:
          "Relay-to-relay: more parts of this heartbeat follow; the parts count as one heartbeat when the last arrives",
      }),
    ),
  },
  {
    description:
      "Daemon → relay. Refreshes liveness; the first one after (re)authentication is authoritative for the tasks held before it. Never forwarded (the relay sends its own upstream).",
  },
);

export const TaskStatusChange = Type.Object(
  {
    type: Type.Literal("taskStatusChange"),
    taskId: TaskId,
    oldStatus: Type.Optional(
      Type.String({ [MAX_CHARS]: MAX_STATUS_CHARS, description: "Previous status" }),
    ),
    newStatus: Type.String({ [MAX_CHARS]: MAX_STATUS_CHARS, description: "New status" }),
  },
  { description: "Daemon → relay → server. Recorded as the task's last reported status." },
);

export const TaskOutput = Forwarded("taskOutput");
export const TaskProgress = Forwarded("taskProgress");

export const TaskComplete = Type.Object(
  {
    type: Type.Literal("taskComplete"),
    taskId: TaskId,
    success: Type.Boolean({ description: "false: the task failed" }),
    error: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        [MAX_CHARS]: MAX_ERROR_CHARS,
        description: "Why it failed",
      }),
    ),
  },
  {
    description:
      "Daemon → relay → server. Frees the daemon's slot. The relay also sends its own upstream: error `daemon lost` or `interrupted before dispatch`.",
  },
);

export const CapacityUpdate = Type.Object(
  {
    type: Type.Literal("capacityUpdate"),
    maxConcurrentTasks: Capacity("The child's new total capacity"),
  },
  { description: "Child relay → relay: sets this connection's capacity. Never forwarded." },
);

/** Any other frame that names a task: only `taskId` matters to the relay. */
export const TaskFrame = Type.Object({ type: Type.String(), taskId: TaskId });

// Server → relay (the relay plays a daemon)
export const Authenticated = Type.Object(
  {
    type: Type.Literal("authenticated"),
    daemonId: Type.String({ description: "The id the relay gave this connection (a UUID)" }),
    maxFrameBytes: Type.Optional(
      Type.Integer({
        minimum: MIN_FRAME_LIMIT_BYTES,
        description:
          "Relay-to-relay: the largest frame the parent reads from this connection, in bytes",
      }),
    ),
  },
  { description: "Relay → daemon: the handshake succeeded." },
);

export const SpawnTask = Type.Object(
  {
    type: Type.Literal("spawnTask"),
    taskId: TaskId,
    taskName: Type.Optional(Type.String({ description: "Human-readable name" })),
  },
  {
    description: "Server → relay → daemon, forwarded unchanged; every other field is the server's.",
  },
);

/** Server commands for one task, delivered to the daemon that holds it. */
export const CONTROL_COMMANDS = [
  "pauseTask",
  "resumeTask",
  "interruptTask",
  "sendMessage",
] as const;
export type ControlCommandType = (typeof CONTROL_COMMANDS)[number];

/**
 * What only the server sends: a daemon that sends one of these is refused
 * with `badMessage`; it is never forwarded (docs/protocol.md "Daemon → relay
 * messages"). `error` is not among them: daemons may report errors upstream.
 */
export const SERVER_ONLY_TYPES = ["authenticated", "spawnTask", ...CONTROL_COMMANDS] as const;

export const ControlCommand = Type.Object(
  {
    type: Type.Union(CONTROL_COMMANDS.map((c) => Type.Literal(c))),
    taskId: TaskId,
    message: Unread("string", "`sendMessage` only: the message for the task"),
  },
  {
    description:
      "Server → relay → the daemon holding the task. `interruptTask` for a queued task cancels it instead.",
  },
);

export const ERROR_CODES = ["badMessage", "unauthorized", "notYourTask", "rateLimited"] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** When the relay sends each error code (docs/protocol.md "Errors"). */
export const ERROR_CODE_MEANINGS: Record<ErrorCode, string> = {
  badMessage:
    "not JSON, not an object, no string `type`, a field of the wrong type or over its size limit (a status over 256 characters, a `taskComplete` error over 65,536, a heartbeat listing far more ids than the daemon's capacity), a server command sent by a daemon, a binary frame, or a second `authenticate`",
  unauthorized:
    "wrong API key, a machineId bound to another key, or no `authenticate` within the auth timeout (then close 4401)",
  notYourTask: "the `taskId` is not dispatched to this daemon; the frame is not forwarded",
  rateLimited:
    "reserved: the protocol allows it as an informational notice only; the relay sends none (a daemon over its frame or byte rate is read more slowly, nothing is dropped)",
};

export const ErrorFrame = Type.Object(
  {
    type: Type.Literal("error"),
    code: Type.Union(
      ERROR_CODES.map((c) => Type.Literal(c)),
      { description: ERROR_CODES.map((c) => `${c}: ${ERROR_CODE_MEANINGS[c]}`).join("; ") },
    ),
    message: Type.String({ description: "Human-readable detail" }),
  },
  {
    description:
      "Relay → daemon. After authentication the connection stays open; before it, close 4401 follows.",
  },
);

/**
 * Every frame a daemon sends, by name, in the order the API lists them. The
 * OpenAPI document (http/openapi-websocket.ts) is built from these two tables.
 */
export const DAEMON_TO_RELAY = {
  Authenticate,
  Heartbeat,
  TaskStatusChange,
  TaskOutput,
  TaskProgress,
  TaskComplete,
  CapacityUpdate,
} as const;
/** Every frame the relay sends a daemon (its own or the server's), by name. */
export const RELAY_TO_DAEMON = {
  Authenticated,
  SpawnTask,
  ControlCommand,
  Error: ErrorFrame,
} as const;

/** Close codes the relay uses (docs/protocol.md "Close codes"). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  tooBig: 1009,
  unauthenticated: 4401,
  silent: 4408,
  replaced: 4409,
} as const;
