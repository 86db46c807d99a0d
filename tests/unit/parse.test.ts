import { describe, expect, test } from "bun:test";
import {
  type DaemonFrame,
  type ProtocolError,
  parseDaemonFrame,
  parseEnvelope,
  parseServerFrame,
  type ServerFrame,
} from "../../src/protocol/parse.ts";
import type { Result } from "../../src/protocol/result.ts";
import { mulberry32 } from "./fakes.ts";

const auth = {
  type: "authenticate",
  apiKey: "k",
  machineId: "m-1",
  hostname: "box",
  maxConcurrentTasks: 3,
};
const j = (v: unknown): string => JSON.stringify(v);

describe("parseDaemonFrame: every kind", () => {
  const cases: [string, string, DaemonFrame][] = [
    [
      "authenticate",
      j(auth),
      { kind: "authenticate", apiKey: "k", machineId: "m-1", hostname: "box", capacity: 3 },
    ],
    [
      "authenticate with role relay",
      j({ ...auth, role: "relay" }),
      {
        kind: "authenticate",
        apiKey: "k",
        machineId: "m-1",
        hostname: "box",
        capacity: 3,
        role: "relay",
      },
    ],
    [
      "authenticate with capacity 0 and 1,000,000",
      j({ ...auth, maxConcurrentTasks: 0 }),
      { kind: "authenticate", apiKey: "k", machineId: "m-1", hostname: "box", capacity: 0 },
    ],
    [
      "authenticate at the capacity maximum",
      j({ ...auth, maxConcurrentTasks: 1_000_000 }),
      { kind: "authenticate", apiKey: "k", machineId: "m-1", hostname: "box", capacity: 1_000_000 },
    ],
    [
      "heartbeat",
      j({ type: "heartbeat", activeTasks: ["a", "b"] }),
      { kind: "heartbeat", activeTasks: ["a", "b"] },
    ],
    [
      "heartbeat empty",
      j({ type: "heartbeat", activeTasks: [] }),
      { kind: "heartbeat", activeTasks: [] },
    ],
    [
      "taskComplete success",
      j({ type: "taskComplete", taskId: "t1", success: true }),
      { kind: "taskComplete", taskId: "t1", success: true, error: null },
    ],
    [
      "taskComplete failure with error",
      j({ type: "taskComplete", taskId: "t1", success: false, error: "boom" }),
      { kind: "taskComplete", taskId: "t1", success: false, error: "boom" },
    ],
    [
      "taskComplete with error null",
      j({ type: "taskComplete", taskId: "t1", success: false, error: null }),
      { kind: "taskComplete", taskId: "t1", success: false, error: null },
    ],
    [
      "taskStatusChange",
      j({ type: "taskStatusChange", taskId: "t1", oldStatus: "starting", newStatus: "running" }),
      { kind: "taskStatusChange", taskId: "t1", newStatus: "running" },
    ],
    [
      "capacityUpdate",
      j({ type: "capacityUpdate", maxConcurrentTasks: 7 }),
      { kind: "capacityUpdate", capacity: 7 },
    ],
    [
      "taskOutput",
      j({ type: "taskOutput", taskId: "t1", output: "hi" }),
      { kind: "task", type: "taskOutput", taskId: "t1" },
    ],
    [
      "taskProgress",
      j({ type: "taskProgress", taskId: "t1", percent: 50 }),
      { kind: "task", type: "taskProgress", taskId: "t1" },
    ],
    [
      "unknown type with taskId",
      j({ type: "somethingNew", taskId: "t9" }),
      { kind: "task", type: "somethingNew", taskId: "t9" },
    ],
    ["unknown type without taskId", j({ type: "hello", x: 1 }), { kind: "other", type: "hello" }],
  ];
  test.each(cases)("%s", (_name, text, expected) => {
    expect(parseDaemonFrame(text)).toEqual({ ok: true, value: expected });
  });

  test("extra unknown fields are accepted on every kind", () => {
    const extra = { zz: { nested: [1, 2] }, future: true };
    for (const [, text, expected] of cases) {
      const withExtra = j({ ...(JSON.parse(text) as object), ...extra });
      expect(parseDaemonFrame(withExtra)).toEqual({ ok: true, value: expected });
    }
  });
});

describe("parseDaemonFrame: malformed input is badMessage naming the field", () => {
  const cases: [string, string, RegExp][] = [
    ["not JSON", "{nope", /not valid JSON/],
    ["empty string", "", /not valid JSON/],
    ["truncated", j(auth).slice(0, 20), /not valid JSON/],
    ["array", "[1,2]", /JSON object/],
    ["null", "null", /JSON object/],
    ["number", "42", /JSON object/],
    ["string", '"authenticate"', /JSON object/],
    ["missing type", j({ taskId: "t" }), /"type"/],
    ["non-string type", j({ type: 5 }), /"type"/],
    ["type null", j({ type: null }), /"type"/],
    ["taskId number on a task frame", j({ type: "taskOutput", taskId: 3 }), /"taskId"/],
    ["taskId empty", j({ type: "taskOutput", taskId: "" }), /"taskId"/],
    ["maxConcurrentTasks -1", j({ ...auth, maxConcurrentTasks: -1 }), /"maxConcurrentTasks"/],
    ["maxConcurrentTasks 1e9", j({ ...auth, maxConcurrentTasks: 1e9 }), /"maxConcurrentTasks"/],
    ["maxConcurrentTasks 1.5", j({ ...auth, maxConcurrentTasks: 1.5 }), /"maxConcurrentTasks"/],
    ['maxConcurrentTasks "3"', j({ ...auth, maxConcurrentTasks: "3" }), /"maxConcurrentTasks"/],
    [
      "maxConcurrentTasks missing",
      j({ type: "authenticate", apiKey: "k", machineId: "m", hostname: "h" }),
      /"maxConcurrentTasks"/,
    ],
    ["apiKey number", j({ ...auth, apiKey: 1 }), /"apiKey"/],
    ["machineId empty", j({ ...auth, machineId: "" }), /"machineId"/],
    [
      "heartbeat activeTasks not array",
      j({ type: "heartbeat", activeTasks: "t1" }),
      /"activeTasks"/,
    ],
    ["heartbeat activeTasks missing", j({ type: "heartbeat" }), /"activeTasks"/],
    ["heartbeat activeTasks of numbers", j({ type: "heartbeat", activeTasks: [1] }), /activeTasks/],
    ["taskComplete success missing", j({ type: "taskComplete", taskId: "t" }), /"success"/],
    [
      "taskComplete success as string",
      j({ type: "taskComplete", taskId: "t", success: "true" }),
      /"success"/,
    ],
    ["taskComplete taskId missing", j({ type: "taskComplete", success: true }), /"taskId"/],
    [
      "taskComplete error number",
      j({ type: "taskComplete", taskId: "t", success: false, error: 5 }),
      /"error"/,
    ],
    [
      "taskStatusChange newStatus missing",
      j({ type: "taskStatusChange", taskId: "t" }),
      /"newStatus"/,
    ],
    [
      "capacityUpdate negative",
      j({ type: "capacityUpdate", maxConcurrentTasks: -2 }),
      /"maxConcurrentTasks"/,
    ],
  ];
  test.each(cases)("%s", (_name, text, message) => {
    const r = parseDaemonFrame(text);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe("badMessage");
    expect(r.error.message).toMatch(message);
  });
});

describe("parseServerFrame", () => {
  const cases: [string, string, ServerFrame][] = [
    [
      "authenticated",
      j({ type: "authenticated", daemonId: "d-1" }),
      { kind: "authenticated", daemonId: "d-1" },
    ],
    [
      "spawnTask",
      j({ type: "spawnTask", taskId: "t1", taskName: "build", repo: "x" }),
      { kind: "spawnTask", taskId: "t1", taskName: "build" },
    ],
    [
      "spawnTask without taskName",
      j({ type: "spawnTask", taskId: "t1" }),
      { kind: "spawnTask", taskId: "t1", taskName: "" },
    ],
    [
      "pauseTask",
      j({ type: "pauseTask", taskId: "t1" }),
      { kind: "control", type: "pauseTask", taskId: "t1" },
    ],
    [
      "resumeTask",
      j({ type: "resumeTask", taskId: "t1" }),
      { kind: "control", type: "resumeTask", taskId: "t1" },
    ],
    [
      "interruptTask",
      j({ type: "interruptTask", taskId: "t1", reason: "user" }),
      { kind: "control", type: "interruptTask", taskId: "t1" },
    ],
    [
      "sendMessage",
      j({ type: "sendMessage", taskId: "t1", message: "hi" }),
      { kind: "control", type: "sendMessage", taskId: "t1" },
    ],
    [
      "unknown type",
      j({ type: "restartDaemon", all: true }),
      { kind: "other", type: "restartDaemon" },
    ],
    [
      "error frame",
      j({ type: "error", code: "x", message: "y" }),
      { kind: "other", type: "error" },
    ],
  ];
  test.each(cases)("%s", (_name, text, expected) => {
    expect(parseServerFrame(text)).toEqual({ ok: true, value: expected });
  });

  const bad: [string, string, RegExp][] = [
    ["not JSON", "<html>", /not valid JSON/],
    ["array", "[]", /JSON object/],
    ["no type", "{}", /"type"/],
    ["authenticated without daemonId", j({ type: "authenticated" }), /"daemonId"/],
    ["spawnTask without taskId", j({ type: "spawnTask", taskName: "x" }), /"taskId"/],
    ["spawnTask taskName number", j({ type: "spawnTask", taskId: "t", taskName: 3 }), /"taskName"/],
    ["control with numeric taskId", j({ type: "pauseTask", taskId: 1 }), /"taskId"/],
    ["control without taskId", j({ type: "sendMessage", message: "x" }), /"taskId"/],
  ];
  test.each(bad)("bad: %s", (_name, text, message) => {
    const r = parseServerFrame(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe("badMessage");
      expect(r.error.message).toMatch(message);
    }
  });
});

test("parseEnvelope keeps every field of the object", () => {
  const r = parseEnvelope(j({ type: "x", a: 1, b: [true] }));
  expect(r).toEqual({ ok: true, value: { type: "x", a: 1, b: [true] } });
});

// ---- fuzz ---------------------------------------------------------------------

const DAEMON_KINDS = new Set([
  "authenticate",
  "heartbeat",
  "taskComplete",
  "taskStatusChange",
  "capacityUpdate",
  "task",
  "other",
]);
const SERVER_KINDS = new Set(["authenticated", "spawnTask", "control", "other"]);
const TYPES = [
  "authenticate",
  "heartbeat",
  "taskComplete",
  "taskStatusChange",
  "capacityUpdate",
  "taskOutput",
  "taskProgress",
  "authenticated",
  "spawnTask",
  "pauseTask",
  "resumeTask",
  "interruptTask",
  "sendMessage",
  "error",
  "",
  "__proto__",
  "constructor",
];
const FIELDS = [
  "type",
  "taskId",
  "apiKey",
  "machineId",
  "hostname",
  "maxConcurrentTasks",
  "activeTasks",
  "success",
  "error",
  "newStatus",
  "oldStatus",
  "daemonId",
  "taskName",
  "role",
  "__proto__",
  "x",
];

function randomValue(rnd: () => number, depth: number): unknown {
  const pick = Math.floor(rnd() * (depth > 2 ? 7 : 9));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return rnd() < 0.5;
    case 2:
      return [0, -1, 1.5, 1e9, 1_000_000, 3, Number.MAX_SAFE_INTEGER, -0][Math.floor(rnd() * 8)];
    case 3:
      return TYPES[Math.floor(rnd() * TYPES.length)];
    case 4:
      return "x".repeat(Math.floor(rnd() * 600));
    case 5:
      return String.fromCharCode(
        ...Array.from({ length: Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 0xffff)),
      );
    case 6:
      return "t1";
    case 7:
      return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(rnd, depth + 1));
    default:
      return randomObject(rnd, depth + 1);
  }
}

function randomObject(rnd: () => number, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (rnd() < 0.8)
    o.type = rnd() < 0.9 ? TYPES[Math.floor(rnd() * TYPES.length)] : randomValue(rnd, depth);
  const n = Math.floor(rnd() * 6);
  for (let i = 0; i < n; i++)
    o[FIELDS[Math.floor(rnd() * FIELDS.length)] as string] = randomValue(rnd, depth);
  return o;
}

const VALID = [
  j(auth),
  j({ type: "heartbeat", activeTasks: ["a"] }),
  j({ type: "taskComplete", taskId: "t1", success: true }),
  j({ type: "taskStatusChange", taskId: "t1", newStatus: "running" }),
  j({ type: "capacityUpdate", maxConcurrentTasks: 2 }),
  j({ type: "taskOutput", taskId: "t1", output: "é ☃ \u0000" }),
  j({ type: "spawnTask", taskId: "t1", taskName: "n" }),
  j({ type: "pauseTask", taskId: "t1" }),
  j({ type: "authenticated", daemonId: "d" }),
];

function mutate(rnd: () => number, text: string): string {
  const chars = [...text];
  const ops = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(rnd() * (chars.length + 1));
    const op = Math.floor(rnd() * 4);
    if (op === 0) chars.splice(at, 1);
    else if (op === 1) chars.splice(at, 0, '{}[]",:0-e.tfn\\'[Math.floor(rnd() * 15)] as string);
    else if (op === 2) chars.length = Math.min(chars.length, at);
    else chars[at] = String.fromCharCode(Math.floor(rnd() * 128));
  }
  return chars.join("");
}

function checkShape<T extends { kind: string }>(
  r: Result<T, ProtocolError>,
  kinds: Set<string>,
): void {
  if (r.ok) {
    expect(kinds.has(r.value.kind)).toBe(true);
    const v = r.value as Record<string, unknown>;
    if ("taskId" in v) expect(typeof v.taskId === "string" && v.taskId.length > 0).toBe(true);
    if ("capacity" in v) {
      expect(Number.isInteger(v.capacity)).toBe(true);
      expect(v.capacity as number).toBeGreaterThanOrEqual(0);
      expect(v.capacity as number).toBeLessThanOrEqual(1_000_000);
    }
    if ("activeTasks" in v) {
      expect((v.activeTasks as unknown[]).every((x) => typeof x === "string")).toBe(true);
    }
    if ("type" in v) expect(typeof v.type).toBe("string");
  } else {
    expect(Object.keys(r)).toEqual(["ok", "error"]);
    expect(r.error.code).toBe("badMessage");
    expect(typeof r.error.message).toBe("string");
    expect(r.error.message.length).toBeGreaterThan(0);
  }
}

test("fuzz: random and mutated frames never throw and always have a well-formed result", () => {
  const rnd = mulberry32(0x5eed_2024);
  let oks = 0;
  let errs = 0;
  for (let i = 0; i < 6000; i++) {
    let text: string;
    const mode = i % 3;
    if (mode === 0) text = JSON.stringify(randomValue(rnd, 0)) ?? "undefined";
    else if (mode === 1) text = JSON.stringify(randomObject(rnd, 0));
    else text = mutate(rnd, VALID[Math.floor(rnd() * VALID.length)] as string);
    let d: Result<DaemonFrame, ProtocolError> | undefined;
    let s: Result<ServerFrame, ProtocolError> | undefined;
    expect(() => {
      d = parseDaemonFrame(text);
      s = parseServerFrame(text);
    }).not.toThrow();
    checkShape(d as Result<DaemonFrame, ProtocolError>, DAEMON_KINDS);
    checkShape(s as Result<ServerFrame, ProtocolError>, SERVER_KINDS);
    // Pure: the same text gives the same answer.
    expect(parseDaemonFrame(text)).toEqual(d as Result<DaemonFrame, ProtocolError>);
    if (d?.ok) oks++;
    else errs++;
  }
  // The generator reaches both sides of the parser.
  expect(oks).toBeGreaterThan(300);
  expect(errs).toBeGreaterThan(300);
});
