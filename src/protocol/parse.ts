/**
 * Pure frame parsing: text in, a typed result out. No I/O, never throws.
 * The relay reads a frame once, keeps the original text for forwarding, and
 * only looks at the fields that routing needs.
 *
 * What a frame must hold is its schema (messages.ts); what the relay takes
 * from it is its reader below. The frame types are what the readers return,
 * so a new message is one schema plus one reader.
 */
import type { Static, TObject } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { repeatedTopLevelKey } from "./duplicate-keys.ts";
import {
  Authenticate,
  Authenticated,
  CapacityUpdate,
  ControlCommand,
  Heartbeat,
  MAX_CHARS,
  SERVER_ONLY_TYPES,
  SpawnTask,
  TaskComplete,
  TaskFrame,
  TaskStatusChange,
} from "./messages.ts";
import { err, type Result } from "./result.ts";

export interface ProtocolError {
  code: "badMessage";
  message: string;
}

type JsonObject = Record<string, unknown> & { type: string };

/** One message: the `type`s it answers to, and its check and read in one step. */
interface Reader<F> {
  readonly types: readonly string[];
  readonly read: (m: JsonObject) => Result<F, ProtocolError>;
}
type FrameOf<R> = R extends Reader<infer F> ? F : never;

const bad = (message: string) => err<ProtocolError>({ code: "badMessage", message });

/** The `type` literals a schema's `type` property allows (none for a plain string). */
function typeLiterals(schema: TObject): string[] {
  const type = schema.properties.type as { const?: unknown; anyOf?: { const?: unknown }[] };
  const literals = type.anyOf?.map((s) => s.const) ?? [type.const];
  return literals.filter((t): t is string => typeof t === "string");
}

/** The fields a schema caps with `maxChars`, and their caps, in property order. */
function cappedFields(schema: TObject): [string, number][] {
  return Object.entries(schema.properties).flatMap(([field, s]) => {
    const max: unknown = (s as Record<string, unknown>)[MAX_CHARS];
    return typeof max === "number" ? [[field, max] as [string, number]] : [];
  });
}

/**
 * The fields of a task result (never dropped by the outbox) are bounded; the
 * message names the field and its limit, so the daemon can send a shorter one.
 */
function tooLong(m: JsonObject, caps: readonly [string, number][]): ProtocolError | null {
  for (const [field, max] of caps) {
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

/**
 * A reader from a schema: the compiled check (TypeBox generates one function
 * per schema, cheap enough for every frame), then the caps, then `read`, which
 * sees the frame typed by its schema. `const F` keeps `kind` a literal.
 */
function reader<S extends TObject, const F extends { kind: string }>(
  schema: S,
  read: (m: Static<S>) => F,
): Reader<F> {
  const compiled = TypeCompiler.Compile(schema);
  const caps = cappedFields(schema);
  return {
    types: typeLiterals(schema),
    read: (m) => {
      if (!compiled.Check(m)) {
        const first = compiled.Errors(m).First();
        const field = first?.path.replace(/^\//, "").replaceAll("/", ".") || "frame";
        return bad(`invalid field "${field}": ${first?.message ?? "invalid"}`);
      }
      const over = caps.length === 0 ? null : tooLong(m, caps);
      return over ? { ok: false, error: over } : { ok: true, value: read(m) };
    },
  };
}

function byType<F>(readers: readonly Reader<F>[]): Map<string, Reader<F>["read"]> {
  return new Map(readers.flatMap((r) => r.types.map((t) => [t, r.read] as const)));
}

const DAEMON_READERS = [
  reader(Authenticate, (m) => ({
    kind: "authenticate",
    apiKey: m.apiKey,
    machineId: m.machineId,
    hostname: m.hostname,
    capacity: m.maxConcurrentTasks,
    ...(m.role !== undefined ? { role: m.role } : {}),
  })),
  reader(Heartbeat, (m) => ({
    kind: "heartbeat",
    activeTasks: m.activeTasks,
    ...(m.more === true ? { more: true } : {}),
  })),
  reader(TaskComplete, (m) => ({
    kind: "taskComplete",
    taskId: m.taskId,
    success: m.success,
    error: m.error ?? null,
  })),
  reader(TaskStatusChange, (m) => ({
    kind: "taskStatusChange",
    taskId: m.taskId,
    newStatus: m.newStatus,
  })),
  reader(CapacityUpdate, (m) => ({ kind: "capacityUpdate", capacity: m.maxConcurrentTasks })),
] as const;

/** Any other type with a `taskId`: forwarded for that task. */
const taskFrame = reader(TaskFrame, (m) => ({ kind: "task", type: m.type, taskId: m.taskId }));

/** A type the relay does not read: forwarded (daemon) or broadcast (server) as is. */
type OtherFrame = { kind: "other"; type: string };

export type DaemonFrame = FrameOf<(typeof DAEMON_READERS)[number] | typeof taskFrame> | OtherFrame;

const SERVER_READERS = [
  reader(Authenticated, (m) => ({
    kind: "authenticated",
    daemonId: m.daemonId,
    ...(m.maxFrameBytes !== undefined ? { maxFrameBytes: m.maxFrameBytes } : {}),
  })),
  reader(SpawnTask, (m) => ({ kind: "spawnTask", taskId: m.taskId, taskName: m.taskName ?? "" })),
  reader(ControlCommand, (m) => ({ kind: "control", type: m.type, taskId: m.taskId })),
] as const;

export type ServerFrame = FrameOf<(typeof SERVER_READERS)[number]> | OtherFrame;

/**
 * Fields that route a frame. Named twice, a frame is ambiguous: JSON.parse keeps
 * the last, a server may keep the first, and the relay forwards the text as is
 * (protocol.md, "Frames").
 */
const ROUTING_FIELDS = ["type", "taskId"] as const;

/** JSON.parse plus the envelope rules shared by both directions. */
export function parseEnvelope(text: string): Result<JsonObject, ProtocolError> {
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

const SERVER_ONLY = new Set<string>(SERVER_ONLY_TYPES);
const DAEMON_BY_TYPE = byType<DaemonFrame>(DAEMON_READERS);
const SERVER_BY_TYPE = byType<ServerFrame>(SERVER_READERS);

/** Parses a frame a daemon (or child relay) sent to the relay. */
export function parseDaemonFrame(text: string): Result<DaemonFrame, ProtocolError> {
  const env = parseEnvelope(text);
  if (!env.ok) return env;
  const m = env.value;
  if (SERVER_ONLY.has(m.type)) {
    return bad(`"${m.type}" is a server command: a daemon may not send it`);
  }
  const read = DAEMON_BY_TYPE.get(m.type);
  if (read) return read(m);
  if (!("taskId" in m)) return { ok: true, value: { kind: "other", type: m.type } };
  return taskFrame.read(m);
}

/** Parses a frame the Makima server (or a parent relay) sent to the relay. */
export function parseServerFrame(text: string): Result<ServerFrame, ProtocolError> {
  const env = parseEnvelope(text);
  if (!env.ok) return env;
  const m = env.value;
  const read = SERVER_BY_TYPE.get(m.type);
  return read ? read(m) : { ok: true, value: { kind: "other", type: m.type } };
}
