/**
 * Message schemas of the Makima daemon protocol (docs/protocol.md).
 * Only the fields the relay reads are described; every schema allows extra
 * fields because the relay forwards frames verbatim and must not care.
 */
import { type Static, Type } from "@sinclair/typebox";

export const MAX_CAPACITY = 1_000_000;

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
