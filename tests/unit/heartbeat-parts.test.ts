/**
 * Relay-to-relay heartbeat parts: a child relay whose heartbeat would exceed
 * the frame limit its parent announced sends it in parts of at most that
 * size, all but the last marked `"more":true`; the parent counts them as one
 * heartbeat, when the last arrives. To the Makima server (no announced
 * limit) the heartbeat is one frame, as the server expects.
 */
import { describe, expect, test } from "bun:test";
import { RECONCILE_SETTLE_MS } from "../../src/core/task-book.ts";
import { encodeAuthenticated, encodeHeartbeatParts } from "../../src/protocol/encode.ts";
import { parseDaemonFrame, parseServerFrame } from "../../src/protocol/parse.ts";
import { relayHarness } from "./relay-harness.ts";

const ids = (n: number, prefix = "task-") =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, "0")}`);

describe("encodeHeartbeatParts", () => {
  test("one frame when it fits, or when the peer announced no limit", () => {
    const all = ids(1000);
    const whole = JSON.stringify({ type: "heartbeat", activeTasks: all });
    expect(encodeHeartbeatParts(all, null)).toEqual({ parts: [whole], unlisted: [] });
    expect(encodeHeartbeatParts(all, Buffer.byteLength(whole))).toEqual({
      parts: [whole],
      unlisted: [],
    });
  });

  test.each([
    ["ASCII ids", ids(2000), 1024],
    ["multi-byte ids", ids(500, "tâche-é-"), 1024],
    ["ids needing escapes", ids(300, 'q"\\\u0001-'), 2048],
  ])("%s: every part fits, parses, and the parts list every id once, in order", (_n, all, max) => {
    const { parts, unlisted } = encodeHeartbeatParts(all, max);
    expect(unlisted).toEqual([]);
    expect(parts.length).toBeGreaterThan(1);
    const parsed = parts.map((p) => parseDaemonFrame(p));
    expect({
      oversize: parts.filter((p) => Buffer.byteLength(p) > max),
      listed: parsed.flatMap((r) =>
        r.ok && r.value.kind === "heartbeat" ? r.value.activeTasks : [],
      ),
      more: parsed.map((r) => r.ok && r.value.kind === "heartbeat" && r.value.more === true),
    }).toEqual({
      oversize: [],
      listed: all,
      more: [...parts.slice(1).map(() => true), false],
    });
    // Tightly packed: no part could have taken the next id.
    for (let i = 0; i < parts.length - 1; i++) {
      const next = JSON.stringify(
        (JSON.parse(parts[i + 1] as string) as { activeTasks: string[] }).activeTasks[0],
      );
      expect(Buffer.byteLength(parts[i] as string) + Buffer.byteLength(next) + 1).toBeGreaterThan(
        max,
      );
    }
  });

  test("an id too long for any part alone is left out, and said so", () => {
    const long = `${"é".repeat(400)}`; // 800 bytes, over what a 700-byte part can hold
    const { parts, unlisted } = encodeHeartbeatParts([...ids(100), long, "last"], 700);
    expect(unlisted).toEqual([long]);
    expect(parts.flatMap((p) => (JSON.parse(p) as { activeTasks: string[] }).activeTasks)).toEqual([
      ...ids(100),
      "last",
    ]);
  });
});

describe("the announced limit in authenticated", () => {
  test("parses from a parent, and is absent from the Makima server's", () => {
    expect(parseServerFrame(encodeAuthenticated("d1", 4096))).toEqual({
      ok: true,
      value: { kind: "authenticated", daemonId: "d1", maxFrameBytes: 4096 },
    });
    expect(parseServerFrame(encodeAuthenticated("d1"))).toEqual({
      ok: true,
      value: { kind: "authenticated", daemonId: "d1" },
    });
  });

  test("a relay announces its frame limit to child relays only", () => {
    const h = relayHarness({ maxFrameBytes: 4096 });
    const plain = h.open();
    h.send(plain, h.authFrame("daemon", 1));
    const child = h.open();
    h.send(child, h.authFrame("child", 1, { role: "relay" }));
    expect([plain.frames()[0], child.frames()[0]]).toEqual([
      { type: "authenticated", daemonId: "d1" },
      { type: "authenticated", daemonId: "d2", maxFrameBytes: 4096 },
    ]);
  });
});

describe("Relay: a heartbeat in parts counts once, as the union of its parts", () => {
  test("after a reattach, the tasks listed in any part are kept and only the others are lost", () => {
    const h = relayHarness();
    const child = h.daemon("child", 4, { role: "relay" });
    for (const t of ["a", "b", "c", "d"]) h.spawn(t);
    child.close(1006, "");
    const back = h.daemon("child", 4, { role: "relay" });
    h.send(back, { type: "heartbeat", activeTasks: ["a", "x"], more: true });
    // Nothing is settled before the last part.
    expect(["a", "b", "c", "d"].map(h.status)).toEqual(Array(4).fill("dispatched"));
    expect(h.lastHeartbeat(back.id)).toBeNull();
    h.send(back, { type: "heartbeat", activeTasks: ["c"], more: true });
    h.send(back, { type: "heartbeat", activeTasks: ["y"] });
    expect(["a", "b", "c", "d"].map(h.status)).toEqual([
      "dispatched",
      "lost",
      "dispatched",
      "lost",
    ]);
    expect(h.lastHeartbeat(back.id)).toBe(h.clock.now());
  });

  test("while connected, two heartbeats in parts that both leave a task out lose it; one listing it in any part keeps it", () => {
    const h = relayHarness();
    const child = h.daemon("child", 3, { role: "relay" });
    // Read without a pause for long enough: an omission counts from the first heartbeat.
    h.clock.advance(RECONCILE_SETTLE_MS);
    for (const t of ["a", "b", "c"]) h.spawn(t);
    const beat = (...parts: string[][]): void => {
      parts.forEach((p, i) => {
        h.send(child, {
          type: "heartbeat",
          activeTasks: p,
          ...(i < parts.length - 1 ? { more: true } : {}),
        });
      });
    };
    beat(["a"], ["b"]);
    beat(["b"], ["a"]);
    expect(["a", "b", "c"].map(h.status)).toEqual(["dispatched", "dispatched", "lost"]);
    beat(["a"], []);
    beat([], ["a"]);
    expect(["a", "b"].map(h.status)).toEqual(["dispatched", "lost"]);
  });

  test("the parts of one heartbeat do not leak into the next connection's", () => {
    const h = relayHarness();
    const child = h.daemon("child", 2, { role: "relay" });
    h.spawn("a");
    h.spawn("b");
    h.send(child, { type: "heartbeat", activeTasks: ["a", "b"], more: true });
    child.close(1006, "");
    const back = h.daemon("child", 2, { role: "relay" });
    h.send(back, { type: "heartbeat", activeTasks: ["a"] });
    expect([h.status("a"), h.status("b")]).toEqual(["dispatched", "lost"]);
  });
});
