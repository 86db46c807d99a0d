/**
 * Free text kept in history is a bounded copy (docs/protocol.md "HTTP
 * shapes"): boundText itself, then both task stores and both connection-log
 * stores, which must keep the same text for the same input.
 */
import { describe, expect, test } from "bun:test";
import {
  boundText,
  HISTORY_TEXT_MAX_BYTES,
  LOG_DETAILS_MAX_BYTES,
  TRUNCATED,
  truncationMark,
} from "../../src/core/text-bound.ts";
import { BACKENDS, pending } from "./helpers.ts";

const bytes = (s: string) => Buffer.byteLength(s, "utf8");
/** What the mark says the original size was, or null when the text was not cut. */
const markedSize = (s: string) => {
  const m = TRUNCATED.exec(s);
  return m ? Number(m[1]) : null;
};

/** The whole character (one code point) that starts at `index`. */
const nextChar = (s: string, index: number) => String.fromCodePoint(s.codePointAt(index) ?? 0);

describe("boundText", () => {
  test.each([
    ["empty", "", 64],
    ["ASCII that fits exactly", "a".repeat(100), 100],
    ["2-byte characters that fit exactly", "é".repeat(50), 100],
    ["a 4-byte character that fits exactly", `${"a".repeat(96)}😀`, 100],
  ])("%s: unchanged", (_, text, max) => {
    expect(boundText(text, max)).toBe(text);
  });

  test.each([
    ["ASCII", "a".repeat(5000)],
    ["2-byte characters", "é".repeat(5000)],
    ["3-byte characters", "€".repeat(5000)],
    ["surrogate pairs", "😀".repeat(5000)],
    ["mixed", "a€😀é".repeat(2000)],
    ["control characters", "\u0001".repeat(5000)],
  ])("%s: cut to the budget on a character boundary, marked with the original size", (_, text) => {
    for (const max of [64, 100, 101, 102, 103, 1000, HISTORY_TEXT_MAX_BYTES]) {
      const cut = boundText(text, max);
      const kept = cut.slice(0, cut.length - truncationMark(bytes(text)).length);
      expect({
        fits: bytes(cut) <= max,
        // The longest prefix: one more character would not fit beside the mark.
        longest:
          bytes(kept + nextChar(text, kept.length)) + bytes(truncationMark(bytes(text))) > max,
        prefix: text.startsWith(kept),
        // No lone surrogate at the cut: the prefix is valid UTF-16.
        whole: kept.isWellFormed(),
        size: markedSize(cut),
        again: boundText(cut, max),
      }).toEqual({
        fits: true,
        longest: true,
        prefix: true,
        whole: true,
        size: bytes(text),
        again: cut,
      });
    }
  });

  test("a surrogate pair straddling every possible cut is never split", () => {
    for (let pad = 0; pad < 8; pad++) {
      const text = `${"a".repeat(pad)}${"😀".repeat(100)}`;
      const cut = boundText(text, 80);
      expect(cut.slice(0, cut.indexOf("…")).isWellFormed()).toBe(true);
      expect(bytes(cut)).toBeLessThanOrEqual(80);
    }
  });

  test("a budget too small for the mark is a bug", () => {
    expect(() => boundText("x", 10)).toThrow(RangeError);
  });
});

const HUGE = "x".repeat(900_000);

for (const backend of BACKENDS) {
  describe(`history text (${backend.name})`, () => {
    test("a 900 KB error and a 900 KB status are kept as 4 KiB marked copies", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      tasks.savePending(pending("a", 1));
      tasks.markDispatched("a", "d", "m", 2);
      tasks.setReportedStatus("a", `running ${HUGE}`);
      tasks.markEnded("a", "failed", 3, `boom ${HUGE}`);
      const row = tasks.get("a");
      const listed = tasks.list({ limit: 1, offset: 0 }).tasks[0];
      expect({
        error: [bytes(row?.error ?? ""), markedSize(row?.error ?? "")],
        status: [bytes(row?.lastReportedStatus ?? ""), markedSize(row?.lastReportedStatus ?? "")],
        errorStart: row?.error?.startsWith("boom xxx"),
        listedSame: listed?.error === row?.error,
      }).toEqual({
        error: [HISTORY_TEXT_MAX_BYTES, 900_005],
        status: [HISTORY_TEXT_MAX_BYTES, 900_008],
        errorStart: true,
        listedSame: true,
      });
    });

    test("short texts and a null error are kept as they are", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      tasks.savePending(pending("a", 1));
      tasks.savePending(pending("b", 1));
      tasks.setReportedStatus("a", "running");
      tasks.markEnded("a", "failed", 3, "x".repeat(HISTORY_TEXT_MAX_BYTES));
      tasks.markEnded("b", "completed", 3, null);
      expect([tasks.get("a")?.error?.length, tasks.get("a")?.lastReportedStatus]).toEqual([
        HISTORY_TEXT_MAX_BYTES,
        "running",
      ]);
      expect(tasks.get("b")?.error).toBeNull();
    });

    test("a page of history does not read the tasks' spawn frames", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      tasks.savePending({ ...pending("a", 1), spawnFrame: `{"type":"spawnTask","p":"${HUGE}"}` });
      const [all, byStatus] = [
        tasks.list({ limit: 10, offset: 0 }).tasks[0],
        tasks.list({ limit: 10, offset: 0, status: "pending" }).tasks[0],
      ];
      expect([all?.taskId, "spawnFrame" in (all ?? {}), "spawnFrame" in (byStatus ?? {})]).toEqual([
        "a",
        false,
        false,
      ]);
      // The row itself keeps it: dispatch needs it.
      expect(tasks.get("a")?.spawnFrame.length).toBeGreaterThan(900_000);
    });

    test("connection-log details are kept up to 1 KiB, marked when cut", () => {
      using s = backend.open();
      const log = s.stores.connectionLog;
      log.insert("downstream_disconnect", 1, `reason ${HUGE}`);
      log.insert("short", 2, "fine");
      log.insert("none", 3, null);
      const [none, short, long] = log.list(3);
      expect({
        long: [bytes(long?.details ?? ""), markedSize(long?.details ?? "")],
        short: short?.details,
        none: none?.details,
      }).toEqual({ long: [LOG_DETAILS_MAX_BYTES, 900_007], short: "fine", none: null });
    });
  });
}
