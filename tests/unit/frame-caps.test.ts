/**
 * Task results (taskComplete, taskStatusChange) are never dropped by the
 * outbox, so their size is bounded where they come in: an over-size status
 * or error is a badMessage naming the field and the limit, and the frame goes
 * nowhere. And a daemon may not send what only the server sends.
 */
import { describe, expect, test } from "bun:test";
import {
  MAX_ERROR_CHARS,
  MAX_STATUS_CHARS,
  SERVER_ONLY_TYPES,
} from "../../src/protocol/messages.ts";
import { parseDaemonFrame } from "../../src/protocol/parse.ts";
import { relayHarness } from "./relay-harness.ts";

const j = (v: unknown): string => JSON.stringify(v);
const status = (over: object) =>
  j({ type: "taskStatusChange", taskId: "t1", oldStatus: "a", newStatus: "b", ...over });
const complete = (error: string) =>
  j({ type: "taskComplete", taskId: "t1", success: false, error });

describe("parseDaemonFrame: the fields of task results are bounded", () => {
  test.each([
    ["newStatus", status({ newStatus: "x".repeat(MAX_STATUS_CHARS + 1) })],
    ["oldStatus", status({ oldStatus: "x".repeat(MAX_STATUS_CHARS + 1) })],
    ["error", complete("x".repeat(MAX_ERROR_CHARS + 1))],
  ])("%s one over its limit is badMessage naming the field and the limit", (field, text) => {
    const r = parseDaemonFrame(text);
    expect(r.ok ? null : r.error).toEqual({
      code: "badMessage",
      message: expect.stringMatching(
        new RegExp(`^invalid field "${field}": \\d+ characters, over the limit of \\d+`),
      ),
    });
    expect(r.ok ? "" : r.error.message).toContain(
      String(field === "error" ? MAX_ERROR_CHARS : MAX_STATUS_CHARS),
    );
  });

  test("at the limit exactly, each is accepted", () => {
    const at = [
      status({ newStatus: "x".repeat(MAX_STATUS_CHARS), oldStatus: "y".repeat(MAX_STATUS_CHARS) }),
      complete("x".repeat(MAX_ERROR_CHARS)),
    ];
    expect(at.map((t) => parseDaemonFrame(t).ok)).toEqual([true, true]);
  });

  test("the limits are the documented ones: 256 characters of status, 64 Ki of error", () => {
    expect([MAX_STATUS_CHARS, MAX_ERROR_CHARS]).toEqual([256, 65_536]);
  });
});

describe("parseDaemonFrame: server commands from a daemon", () => {
  test.each(SERVER_ONLY_TYPES.map((t) => [t]))("%s is badMessage", (type) => {
    const r = parseDaemonFrame(j({ type, taskId: "t1", daemonId: "x", taskName: "n" }));
    expect(r.ok ? null : r.error).toEqual({
      code: "badMessage",
      message: `"${type}" is a server command: a daemon may not send it`,
    });
  });

  test("the list is every server → daemon command", () => {
    expect([...SERVER_ONLY_TYPES].sort() as string[]).toEqual(
      [
        "authenticated",
        "interruptTask",
        "pauseTask",
        "resumeTask",
        "sendMessage",
        "spawnTask",
      ].sort(),
    );
  });

  test("error frames and unknown types still pass", () => {
    expect(parseDaemonFrame(j({ type: "error", code: "x", message: "y" })).ok).toBe(true);
    expect(parseDaemonFrame(j({ type: "somethingNew" })).ok).toBe(true);
  });
});

describe("Relay: refused frames go nowhere", () => {
  test("an over-size taskComplete is refused; the task stays dispatched and a shorter one completes it", () => {
    const h = relayHarness();
    const d = h.daemon("m1", 1);
    h.spawn("t1");
    h.forwarded.length = 0;
    h.send(d, complete("x".repeat(MAX_ERROR_CHARS + 1)));
    expect(h.errors(d)).toEqual([expect.stringContaining('badMessage: invalid field "error"')]);
    expect(h.forwarded).toEqual([]);
    expect(h.status("t1")).toBe("dispatched");
    h.send(d, complete("short"));
    expect(h.forwarded).toEqual([{ text: complete("short"), critical: true }]);
    expect(h.status("t1")).toBe("failed");
  });

  test("an over-size taskStatusChange is refused and not recorded", () => {
    const h = relayHarness();
    const d = h.daemon("m1", 1);
    h.spawn("t1");
    h.forwarded.length = 0;
    h.send(d, status({ newStatus: "x".repeat(MAX_STATUS_CHARS + 1) }));
    expect(h.errors(d)).toEqual([expect.stringContaining('invalid field "newStatus"')]);
    expect(h.forwarded).toEqual([]);
    expect(h.stores.tasks.get("t1")?.lastReportedStatus).toBeNull();
  });

  test("spawnTask, authenticated and control commands from a daemon are never forwarded", () => {
    const h = relayHarness();
    const d = h.daemon("m1", 1);
    h.spawn("t1");
    h.forwarded.length = 0;
    // Even about its own task: a daemon does not command the server.
    for (const type of SERVER_ONLY_TYPES) h.send(d, { type, taskId: "t1", daemonId: "x" });
    expect(h.forwarded).toEqual([]);
    expect(h.errors(d)).toHaveLength(SERVER_ONLY_TYPES.length);
    expect(d.closed).toBeNull();
    expect(h.status("t1")).toBe("dispatched");
  });
});
