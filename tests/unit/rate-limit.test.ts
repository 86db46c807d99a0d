import { expect, test } from "bun:test";
import { TokenBucket } from "../../src/core/rate-limit.ts";

test("a bucket allows its burst at once: the frame that empties it says stop reading", () => {
  const bucket = new TokenBucket(10, 5, 0);
  const empty = Array.from({ length: 5 }, () => bucket.take(0));
  expect(empty).toEqual([false, false, false, false, true]);
  // Frames read after the pause still count: they run the bucket into debt.
  expect(bucket.take(0)).toBe(true);
  // -1 token: reading resumes once one tenth of the rate (1 token) is back, after 200 ms at 10/s.
  expect(bucket.resumeIn(0)).toBe(200);
  expect(bucket.resumeIn(150)).toBe(50);
  expect(bucket.resumeIn(200)).toBe(0);
});

test("a long pause refills only up to the burst", () => {
  const bucket = new TokenBucket(10, 5, 0);
  const later = Array.from({ length: 6 }, () => bucket.take(60_000));
  expect(later).toEqual([false, false, false, false, true, true]);
});

test("resuming waits for a tenth of the rate, so a flood is paused a few times a second", () => {
  const bucket = new TokenBucket(1000, 2000, 0);
  for (let i = 0; i < 2000; i++) bucket.take(0);
  // 0 tokens left: 100 tokens (a tenth of the rate) come back in 100 ms.
  expect(bucket.resumeIn(0)).toBe(100);
});

test("time going backwards never adds tokens", () => {
  const bucket = new TokenBucket(1000, 1, 1000);
  expect(bucket.take(1000)).toBe(true);
  expect(bucket.resumeIn(500)).toBe(1);
});
