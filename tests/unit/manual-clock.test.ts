import { expect, test } from "bun:test";
import { ManualClock } from "../../src/core/manual-clock.ts";

test("timers fire in time order (ties by creation), including ones set while firing", () => {
  const clock = new ManualClock(1000);
  const fired: [string, number][] = [];
  const at = (name: string) => () => fired.push([name, clock.now()]);
  clock.setTimeout(at("b"), 20);
  clock.setTimeout(at("a"), 10);
  clock.setTimeout(at("a2"), 10);
  clock.setTimeout(() => {
    fired.push(["c", clock.now()]);
    clock.setTimeout(at("c+5"), 5);
  }, 30);
  const cancelled = clock.setTimeout(at("never"), 15);
  clock.clearTimeout(cancelled);
  expect(clock.timerCount).toBe(4);
  clock.advance(9);
  expect(fired).toEqual([]);
  clock.advance(31);
  expect(fired).toEqual([
    ["a", 1010],
    ["a2", 1010],
    ["b", 1020],
    ["c", 1030],
    ["c+5", 1035],
  ]);
  expect(clock.now()).toBe(1040);
  expect(clock.timerCount).toBe(0);
});

test("a zero or negative delay fires on the next advance, not synchronously", () => {
  const clock = new ManualClock();
  let n = 0;
  clock.setTimeout(() => n++, 0);
  clock.setTimeout(() => n++, -5);
  expect(n).toBe(0);
  clock.advance(0);
  expect(n).toBe(2);
});
