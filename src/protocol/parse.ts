/**
 * Pure frame parsing: text in, a typed result out. No I/O, never throws.
 * The relay reads a frame once, keeps the original text for forwarding, and
 * only looks at the fields that routing needs.
 */
import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { repeatedTopLevelKey } from "./duplicate-keys.ts";
import {
  Authenticate,
  Authenticated,
  CapacityUpdate,
  CONTROL_COMMANDS,
  type ControlCommandType,
  Heartbeat,
  MAX_ERROR_CHARS,
  MAX_STATUS_CHARS,
  SERVER_ONLY_TYPES,
  SpawnTask,
  TaskComplete,
  TaskFrame,
  TaskStatusChange,
} from "./messages.ts";

export interface ProtocolError {
  code: "badMessage";
  message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

export type DaemonFrame =
  | {
      kind: "authenticate";
      apiKey: string;
      machineId: string;
      hostname: string;
      capacity: number;
      role?: string;
    }
  | { kind: "heartbeat"; activeTasks: string[]; more?: true }
  | { kind: "taskComplete"; taskId: string; success: boolean; error: string | null }
  | { kind: "taskStatusChange"; taskId: string; newStatus: string }
  | { kind: "capacityUpdate"; capacity: number }
  | { kind: "task"; type: string; taskId: string }
  | { kind: "other"; type: string };

export type ServerFrame =
  | { kind: "authenticated"; daemonId: string; maxFrameBytes?: number }
  | { kind: "spawnTask"; taskId: string; taskName: string }
  | { kind: "control"; type: ControlCommandType; taskId: string }
  | { kind: "other"; type: string };

function checker<T extends TSchema>(schema: T) {
  const compiled = TypeCompiler.Compile(schema);
  return (value: unknown): ProtocolError | null => {
    if (compiled.Check(value)) return null;
    const first = compiled.Errors(value).First();
    const field = first?.path.replace(/^\//, "").replaceAll("/", ".") || "frame";
    return {
      code: "badMessage",
      message: `invalid field "${field}": ${first?.message ?? "invalid"}`,
    };
  };
}

const checkAuthenticate = checker(Authenticate);
const checkHeartbeat = checker(Heartbeat);
const checkTaskComplete = checker(TaskComplete);
const checkTaskStatusChange = checker(TaskStatusChange);
const checkCapacityUpdate = checker(CapacityUpdate);
const checkTaskFrame = checker(TaskFrame);
const checkAuthenticated = checker(Authenticated);
const checkSpawnTask = checker(SpawnTask);
const checkControl = checker(TaskFrame);

const bad = (message: string): { ok: false; error: ProtocolError } => ({
  ok: false,
  error: { code: "badMessage", message },
});

type JsonObject = Record<string, unknown> & { type: string };

/**
 * Fields that route a frame. Named twice, a frame is ambiguous: JSON.parse keeps
 * the last, a server may keep the first, and the relay forwards the text as is
 * (protocol.md, "Frames").
 */
const ROUTING_FIELDS = ["type", "taskId"] as const;

/** JSON.parse plus the envelope rules shared by both directions. */
export function parseEnvelope(text: string): Result<JsonObject> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad("frame is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return bad("frame must be a JSON object");
  }
  const repeated = repeatedTopLevelKey(text, ROUTING_FIELDS);
  if (repeated !== null) return bad(`duplicate field "${repeated}": a frame may name it only once`);
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string") return bad('invalid field "type": expected a string');
  return { ok: true, value: value as JsonObject };
}

function validated<T>(error: ProtocolError | null, value: () => T): Result<T> {
  return error ? { ok: false, error } : { ok: true, value: value() };
}

/**
 * The fields of a task result (never dropped by the outbox) are bounded; the
 * message names the field and its limit, so the daemon can send a shorter one.
 */
function tooLong(m: JsonObject, fields: readonly string[], max: number): ProtocolError | null {
  for (const field of fields) {
    const value = m[field];
    if (typeof value === "string" && value.length > max) {
      return {
        code: "badMessage",
        message: `invalid field "${field}": ${value.length} characters, over the limit of ${max}; send a shorter one`,
      };
    }
  }
  return null;
}

const SERVER_ONLY = new Set<string>(SERVER_ONLY_TYPES);

/** Parses a frame a daemon (or child relay) sent to the relay. */
export function parseDaemonFrame(text: string): Result<DaemonFrame> {
  const env = parseEnvelope(text);
  if (!env.ok) return env;
  const m = env.value;
  if (SERVER_ONLY.has(m.type)) {
    return bad(`"${m.type}" is a server command: a daemon may not send it`);
  }
  switch (m.type) {
    case "authenticate":
      return validated(checkAuthenticate(m), () => ({
        kind: "authenticate" as const,
        apiKey: m.apiKey as string,
        machineId: m.machineId as string,
        hostname: m.hostname as string,
        capacity: m.maxConcurrentTasks as number,
        ...(typeof m.role === "string" ? { role: m.role } : {}),
      }));
    case "heartbeat":
      return validated(checkHeartbeat(m), () => ({
        kind: "heartbeat" as const,
        activeTasks: m.activeTasks as string[],
        ...(m.more === true ? { more: true as const } : {}),
      }));
    case "taskComplete":
      return validated(checkTaskComplete(m) ?? tooLong(m, ["error"], MAX_ERROR_CHARS), () => ({
        kind: "taskComplete" as const,
        taskId: m.taskId as string,
        success: m.success as boolean,
        error: (m.error as string | null | undefined) ?? null,
      }));
    case "taskStatusChange":
      return validated(
        checkTaskStatusChange(m) ?? tooLong(m, ["oldStatus", "newStatus"], MAX_STATUS_CHARS),
        () => ({
          kind: "taskStatusChange" as const,
          taskId: m.taskId as string,
          newStatus: m.newStatus as string,
        }),
      );
    case "capacityUpdate":
      return validated(checkCapacityUpdate(m), () => ({
        kind: "capacityUpdate" as const,
        capacity: m.maxConcurrentTasks as number,
      }));
    default:
      if (!("taskId" in m)) return { ok: true, value: { kind: "other", type: m.type } };
      return validated(checkTaskFrame(m), () => ({
        kind: "task" as const,
        type: m.type,
        taskId: m.taskId as string,
      }));
  }
}

const CONTROL = new Set<string>(CONTROL_COMMANDS);

/** Parses a frame the Makima server (or a parent relay) sent to the relay. */
export function parseServerFrame(text: string): Result<ServerFrame> {
  const env = parseEnvelope(text);
  if (!env.ok) return env;
  const m = env.value;
  if (m.type === "authenticated") {
    return validated(checkAuthenticated(m), () => ({
      kind: "authenticated" as const,
      daemonId: m.daemonId as string,
      ...(typeof m.maxFrameBytes === "number" ? { maxFrameBytes: m.maxFrameBytes } : {}),
    }));
  }
  if (m.type === "spawnTask") {
    return validated(checkSpawnTask(m), () => ({
      kind: "spawnTask" as const,
      taskId: m.taskId as string,
      taskName: typeof m.taskName === "string" ? m.taskName : "",
    }));
  }
  if (CONTROL.has(m.type)) {
    return validated(checkControl(m), () => ({
      kind: "control" as const,
      type: m.type as ControlCommandType,
      taskId: m.taskId as string,
    }));
  }
  return { ok: true, value: { kind: "other", type: m.type } };
}
