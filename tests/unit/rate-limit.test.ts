import { expect, test } from "bun:test";
import { TokenBucket } from "../../src/core/rate-limit.ts";

test("a bucket allows its burst at once, then its rate", () => {
  const bucket = new TokenBucket(10, 5, 0);
  const burst = Array.from({ length: 7 }, () => bucket.take(0));
  expect(burst).toEqual([true, true, true, true, true, false, false]);
  // 100 ms at 10/s refills one token.
  expect([bucket.take(100), bucket.take(100)]).toEqual([true, false]);
  // A long pause refills only up to the burst.
  const later = Array.from({ length: 6 }, () => bucket.take(60_000));
  expect(later.filter(Boolean)).toHaveLength(5);
});

test("time going backwards never adds tokens", () => {
  const bucket = new TokenBucket(1000, 1, 1000);
  expect(bucket.take(1000)).toBe(true);
  expect(bucket.take(500)).toBe(false);
});
