import { describe, expect, test } from "bun:test";
import { backoffDelay } from "../../src/core/backoff.ts";

const policy = { baseMs: 1000, maxMs: 30_000 };

describe("backoffDelay", () => {
  const cases: [number, number, number][] = [
    // attempt, jitter, expected ms
    [0, 0, 1000],
    [1, 0, 2000],
    [2, 0, 4000],
    [3, 0, 8000],
    [4, 0, 16_000],
    [5, 0, 30_000],
    [0, 0.999, 1999],
    [1, 0.999, 2999],
    [3, 0.999, 8999],
    [4, 0.999, 16_999],
    [5, 0.999, 30_000],
    [50, 0.999, 30_000],
  ];
  test.each(cases)("attempt %d with jitter %d waits %d ms", (attempt, j, expected) => {
    expect(backoffDelay(attempt, policy, () => j)).toBeCloseTo(expected, 6);
  });

  test("grows monotonically and never exceeds the cap, even for huge attempts", () => {
    let previous = 0;
    for (let attempt = 0; attempt < 2000; attempt++) {
      const d = backoffDelay(attempt, policy, () => 0.5);
      expect(d).toBeGreaterThanOrEqual(previous);
      expect(d).toBeLessThanOrEqual(policy.maxMs);
      expect(Number.isFinite(d)).toBe(true);
      previous = d;
    }
    expect(previous).toBe(policy.maxMs);
  });

  test("jitter stays within [base*2^n, base*2^n + base) for any jitter in [0, 1)", () => {
    for (const attempt of [0, 1, 2, 3]) {
      const low = backoffDelay(attempt, policy, () => 0);
      const high = backoffDelay(attempt, policy, () => 0.999);
      expect(low).toBe(policy.baseMs * 2 ** attempt);
      expect(high).toBeGreaterThan(low);
      expect(high).toBeLessThan(low + policy.baseMs);
    }
  });

  test("a cap below the base wins", () => {
    expect(backoffDelay(0, { baseMs: 500, maxMs: 100 }, () => 0.9)).toBe(100);
  });
});
