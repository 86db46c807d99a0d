import { expect, test } from "bun:test";
import { TaskQueue } from "../../src/core/task-queue.ts";

test("FIFO with O(1) delete, no duplicates", () => {
  const q = new TaskQueue();
  expect(q.shift()).toBeUndefined();
  for (const t of ["a", "b", "c", "d"]) q.push(t);
  expect(q.size).toBe(4);
  expect(q.delete("b")).toBe(true);
  expect(q.delete("zz")).toBe(false);
  expect(q.shift()).toBe("a");
  expect(q.ids()).toEqual(["c", "d"]);
  q.push("c"); // already queued: keeps its place
  expect(q.ids()).toEqual(["c", "d"]);
  expect([q.has("c"), q.has("b")]).toEqual([true, false]);
  const drained: string[] = [];
  for (let t = q.shift(); t !== undefined; t = q.shift()) drained.push(t);
  expect(drained).toEqual(["c", "d"]);
  expect(q.size).toBe(0);
});
