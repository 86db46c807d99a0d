import { describe, expect, test } from "bun:test";
import { createKeyCheck } from "../../src/core/key-check.ts";

describe("createKeyCheck", () => {
  const check = createKeyCheck(["upstream-key", "daemon-a", "", "daemon-b"]);
  const cases: [string, boolean][] = [
    ["upstream-key", true],
    ["daemon-a", true],
    ["daemon-b", true],
    ["", false],
    ["daemon-c", false],
    ["daemon-a ", false],
    [" daemon-a", false],
    ["DAEMON-A", false],
    ["daemon-", false],
    ["upstream-key-and-more", false],
    ["upstream-key\n", false],
  ];
  test.each(cases)("%p → %p", (candidate, expected) => {
    expect(check(candidate)).toBe(expected);
  });

  test("an empty key is never accepted, even when configured", () => {
    expect(createKeyCheck([""])("")).toBe(false);
    expect(createKeyCheck(["", ""])("")).toBe(false);
    expect(createKeyCheck([])("")).toBe(false);
    expect(createKeyCheck([])("anything")).toBe(false);
  });

  test("keys of any length and content, including non-ASCII", () => {
    const long = "k".repeat(10_000);
    const check2 = createKeyCheck([long, "ключ-☃"]);
    expect(check2(long)).toBe(true);
    expect(check2("ключ-☃")).toBe(true);
    expect(check2(long.slice(1))).toBe(false);
    expect(check2("ключ")).toBe(false);
  });
});
