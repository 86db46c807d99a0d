import { expect, test } from "bun:test";
import {
  encodeAuthenticate,
  encodeAuthenticated,
  encodeCapacityUpdate,
  encodeError,
  encodeHeartbeat,
  encodeTaskComplete,
} from "../../src/protocol/encode.ts";
import { parseDaemonFrame, parseServerFrame } from "../../src/protocol/parse.ts";

test("each encoder writes the protocol's shape, and it parses back", () => {
  const cases: [string, unknown][] = [
    [encodeError("notYourTask", "no"), { type: "error", code: "notYourTask", message: "no" }],
    [encodeAuthenticated("d-1"), { type: "authenticated", daemonId: "d-1" }],
    [
      encodeAuthenticate({ apiKey: "k", machineId: "m", hostname: "h", maxConcurrentTasks: 0 }),
      {
        type: "authenticate",
        apiKey: "k",
        machineId: "m",
        hostname: "h",
        maxConcurrentTasks: 0,
        role: "relay",
      },
    ],
    [encodeHeartbeat(["a", "b"]), { type: "heartbeat", activeTasks: ["a", "b"] }],
    [encodeTaskComplete("t", true), { type: "taskComplete", taskId: "t", success: true }],
    [
      encodeTaskComplete("t", false, "daemon lost"),
      { type: "taskComplete", taskId: "t", success: false, error: "daemon lost" },
    ],
    [encodeCapacityUpdate(5), { type: "capacityUpdate", maxConcurrentTasks: 5 }],
  ];
  for (const [text, expected] of cases) expect(JSON.parse(text)).toStrictEqual(expected);
  expect(parseServerFrame(encodeAuthenticated("d-1"))).toEqual({
    ok: true,
    value: { kind: "authenticated", daemonId: "d-1" },
  });
  expect(parseDaemonFrame(encodeTaskComplete("t", false, "x")).ok).toBe(true);
  expect(parseDaemonFrame(encodeHeartbeat([])).ok).toBe(true);
});

test("the relay's authenticate cannot be overridden into another role", () => {
  const id = { apiKey: "k", machineId: "m", hostname: "h", maxConcurrentTasks: 1, role: "daemon" };
  expect(JSON.parse(encodeAuthenticate(id)).role).toBe("relay");
});
