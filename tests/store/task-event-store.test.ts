import { describe, expect, test } from "bun:test";
import type { TaskEvent } from "../../src/core/ports.ts";
import { BACKENDS, openBatched, pending, row } from "./helpers.ts";

const event = (n: number, over: Partial<TaskEvent> = {}): TaskEvent => ({
  n,
  at: 1000 + n,
  kind: "statusReported",
  machineId: "m-1",
  detail: `status ${n}`,
  upstream: null,
  outputFrames: n * 2,
  outputBytes: n * 20,
  ...over,
});

for (const backend of BACKENDS) {
  describe(`TaskEventStore (${backend.name})`, () => {
    test("lists a task's events in order, with every field, and its last one", () => {
      using s = backend.open();
      const { tasks, taskEvents } = s.stores;
      tasks.savePending(pending("a", 1));
      tasks.savePending(pending("b", 2));
      const ended = event(2, {
        kind: "failed",
        detail: null,
        upstream: "held",
        machineId: null,
      });
      taskEvents.append("a", event(0, { kind: "queued", machineId: null }), null);
      taskEvents.append("b", event(0), null);
      taskEvents.append("a", event(1), null);
      taskEvents.append("a", ended, null);
      expect(taskEvents.list("a")).toEqual([
        event(0, { kind: "queued", machineId: null }),
        event(1),
        ended,
      ]);
      expect(taskEvents.last("a")).toEqual(ended);
      expect(taskEvents.list("b")).toEqual([event(0)]);
      expect({ list: taskEvents.list("none"), last: taskEvents.last("none") }).toEqual({
        list: [],
        last: null,
      });
    });

    test("an append that evicts deletes that one earlier event of the task only", () => {
      using s = backend.open();
      const { tasks, taskEvents } = s.stores;
      tasks.savePending(pending("a", 1));
      tasks.savePending(pending("b", 2));
      for (let n = 0; n < 4; n++) {
        taskEvents.append("a", event(n), null);
        taskEvents.append("b", event(n), null);
      }
      taskEvents.append("a", event(4), 1);
      expect(taskEvents.list("a").map((e) => e.n)).toEqual([0, 2, 3, 4]);
      expect(taskEvents.list("b").map((e) => e.n)).toEqual([0, 1, 2, 3]);
    });

    test("pruning a task removes its events; a kept task keeps them", () => {
      using s = backend.open();
      const { tasks, taskEvents } = s.stores;
      for (const [i, id] of ["old", "new"].entries()) {
        tasks.savePending(pending(id, i));
        taskEvents.append(id, event(0), null);
        tasks.markEnded(id, "completed", 100 + i, null);
        taskEvents.append(id, event(1, { kind: "completed", upstream: "sent" }), null);
      }
      tasks.prune(1);
      expect(tasks.get("old")).toBeNull();
      expect({ old: taskEvents.list("old"), new: taskEvents.list("new").length }).toEqual({
        old: [],
        new: 2,
      });
    });

    test("a new attempt of an ended task starts an empty timeline", () => {
      using s = backend.open();
      const { tasks, taskEvents } = s.stores;
      tasks.savePending(pending("a", 1));
      taskEvents.append("a", event(0), null);
      // An active duplicate changes nothing...
      tasks.savePending(pending("a", 2));
      expect(taskEvents.list("a")).toHaveLength(1);
      tasks.markEnded("a", "lost", 3, "daemon lost");
      // ...a new attempt drops the old one's events, so its own start at 0 again.
      tasks.savePending(pending("a", 4));
      expect(taskEvents.list("a")).toEqual([]);
      taskEvents.append("a", event(0, { kind: "queued" }), null);
      expect(taskEvents.last("a")?.kind).toBe("queued");
    });
  });
}

describe("TaskEventStore (SQLite, behind the write batch)", () => {
  test("an event commits with the turn that wrote it, in the task's transaction", () => {
    using b = openBatched();
    const { tasks, taskEvents } = b.stores;
    tasks.savePending(pending("a", 1));
    taskEvents.append("a", event(0), null);
    // Nothing is visible before the turn's commit...
    expect(taskEvents.list("a")).toEqual([]);
    b.endTurn();
    expect(taskEvents.list("a")).toEqual([event(0)]);
    // ...and a failed commit keeps the event queued until the retry succeeds.
    taskEvents.append("a", event(1), null);
    b.tx.failCommits = 1;
    b.endTurn();
    expect(taskEvents.list("a")).toHaveLength(1);
    b.clock.advance(10_000);
    expect(taskEvents.list("a")).toHaveLength(2);
    expect(row(b.sqlite, "SELECT COUNT(*) AS n FROM task_events")).toEqual({ n: 2 });
  });
});
