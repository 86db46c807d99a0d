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

const Capacity = Type.Integer({ minimum: 0, maximum: MAX_CAPACITY });
const TaskId = Type.String({ minLength: 1, maxLength: 512 });

// Daemon → relay (the relay plays the server)
export const Authenticate = Type.Object({
  type: Type.Literal("authenticate"),
  apiKey: Type.String(),
  machineId: Type.String({ minLength: 1, maxLength: 256 }),
  hostname: Type.String({ maxLength: 256 }),
  maxConcurrentTasks: Capacity,
  role: Type.Optional(Type.String()),
});
export type Authenticate = Static<typeof Authenticate>;

export const Heartbeat = Type.Object({
  type: Type.Literal("heartbeat"),
  activeTasks: Type.Array(Type.String(), { maxItems: MAX_CAPACITY }),
  /** Relay-to-relay: more parts of this heartbeat follow (docs/protocol.md "Heartbeat parts"). */
  more: Type.Optional(Type.Boolean()),
});

export const TaskComplete = Type.Object({
  type: Type.Literal("taskComplete"),
  taskId: TaskId,
  success: Type.Boolean(),
  error: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});

export const TaskStatusChange = Type.Object({
  type: Type.Literal("taskStatusChange"),
  taskId: TaskId,
  oldStatus: Type.Optional(Type.String()),
  newStatus: Type.String(),
});

export const CapacityUpdate = Type.Object({
  type: Type.Literal("capacityUpdate"),
  maxConcurrentTasks: Capacity,
});

/** Any other frame that names a task: only `taskId` matters to the relay. */
export const TaskFrame = Type.Object({ type: Type.String(), taskId: TaskId });

// Server → relay (the relay plays a daemon)
export const Authenticated = Type.Object({
  type: Type.Literal("authenticated"),
  daemonId: Type.String(),
  /** Relay-to-relay: the largest frame the parent reads from this connection, in bytes. */
  maxFrameBytes: Type.Optional(Type.Integer({ minimum: MIN_FRAME_LIMIT_BYTES })),
});

export const SpawnTask = Type.Object({
  type: Type.Literal("spawnTask"),
  taskId: TaskId,
  taskName: Type.Optional(Type.String()),
});

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

export const ControlCommand = Type.Object({
  type: Type.Union(CONTROL_COMMANDS.map((c) => Type.Literal(c))),
  taskId: TaskId,
});

export const ERROR_CODES = ["badMessage", "unauthorized", "notYourTask", "rateLimited"] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const ErrorFrame = Type.Object({
  type: Type.Literal("error"),
  code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c))),
  message: Type.String(),
});

/** Close codes the relay uses (docs/protocol.md "Close codes"). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  tooBig: 1009,
  unauthenticated: 4401,
  silent: 4408,
  replaced: 4409,
} as const;
