import { expect, test } from "bun:test";
import { RelayStats } from "../../src/core/stats.ts";

test("counters, and dispatch latency in a fixed histogram", () => {
  const s = new RelayStats();
  s.frameFromDaemon(10);
  s.frameFromDaemon(5);
  s.frameFromServer(7);
  s.ended("lost");
  s.ended("lost");
  s.ended("completed");
  expect([s.framesFromDaemons, s.bytesFromDaemons, s.framesFromServer, s.bytesFromServer]).toEqual([
    2, 15, 1, 7,
  ]);
  expect(s.lostTasks).toBe(2);
  expect(s.endedByStatus).toEqual({ lost: 2, completed: 1 });
  for (let i = 0; i < 2000; i++) s.dispatched(i);
  expect(s.dispatchedTotal).toBe(2000);
  expect(s.dispatchLatency.count).toBe(2000);
  expect(s.dispatchLatency.sum).toBeCloseTo((1999 * 2000) / 2 / 1000, 6);
});
