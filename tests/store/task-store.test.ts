import { describe, expect, test } from "bun:test";
import { TASK_STATUSES, type TaskStatus, type TaskStore } from "../../src/core/ports.ts";
import { PRUNED_KEY } from "../../src/store/task-store.ts";
import { BACKENDS, openBatched, openStores, pending, row, tempDir } from "./helpers.ts";

const ids = (tasks: { taskId: string }[]) => tasks.map((t) => t.taskId);

/** prune() reports through its callback; without a batch it is told at once. */
function pruneNow(tasks: TaskStore, keep: number, maxRows?: number): number {
  const told: number[] = [];
  tasks.prune(keep, maxRows, (n) => told.push(n));
  expect(told).toHaveLength(1);
  return told[0] as number;
}

/** Ten tasks ended at 100..109, t0 then ended again (ignored) and started anew. */
function tenEndedOneRetried(tasks: TaskStore): void {
  for (let i = 0; i < 10; i++) {
    tasks.savePending(pending(`t${i}`, i));
    tasks.markEnded(`t${i}`, "completed", 100 + i, null);
  }
  // Ending an already ended task changes nothing (and is not counted twice).
  tasks.markEnded("t0", "failed", 999, null);
  // A new attempt of an ended task is active again: no longer prunable.
  tasks.savePending(pending("t0", 50));
}

for (const backend of BACKENDS) {
  describe(`TaskStore (${backend.name})`, () => {
    test("savePending inserts a pending task at the back of the queue", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      tasks.savePending(pending("a", 1000));
      tasks.savePending(pending("b", 999));
      expect(tasks.get("a")).toEqual({
        taskId: "a",
        taskName: "name-a",
        status: "pending",
        spawnFrame: '{"type":"spawn","taskId":"a"}',
        dispatchedTo: null,
        machineId: null,
        receivedAt: 1000,
        dispatchedAt: null,
        completedAt: null,
        error: null,
        lastReportedStatus: null,
        attempts: 1,
        seq: 1,
      });
      expect(tasks.get("b")?.seq).toBe(2);
      expect(ids(tasks.loadActive())).toEqual(["a", "b"]);
      expect(tasks.get("missing")).toBeNull();
    });

    test("a new attempt of an ended task resets it, counts the attempt and goes to the back", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      tasks.savePending(pending("a", 1));
      tasks.savePending(pending("b", 2));
      tasks.markDispatched("a", "daemon-1", "machine-1", 3);
      tasks.setReportedStatus("a", "running");
      tasks.holdCommand("a", "stale command");
      tasks.markEnded("a", "failed", 4, "daemon died");

      tasks.savePending({ ...pending("a", 5), taskName: "renamed", spawnFrame: "{}" });
      expect(tasks.get("a")).toMatchObject({
        status: "pending",
        taskName: "renamed",
        spawnFrame: "{}",
        receivedAt: 5,
        attempts: 2,
        seq: 3,
        dispatchedTo: null,
        machineId: null,
        dispatchedAt: null,
        completedAt: null,
        error: null,
        lastReportedStatus: null,
      });
      expect(ids(tasks.loadActive())).toEqual(["b", "a"]);
      // Commands held for the previous attempt must not reach the new run.
      expect(tasks.heldCommands("a")).toEqual([]);
      tasks.markEnded("a", "lost", 6, null);
      tasks.savePending(pending("a", 7));
      expect(tasks.get("a")?.attempts).toBe(3);
    });

    test("savePending of an active task changes nothing", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      tasks.savePending(pending("a", 1));
      const first = tasks.get("a");
      tasks.savePending(pending("b", 2));
      tasks.holdCommand("a", "kept");
      tasks.savePending({ ...pending("a", 9), spawnFrame: "resent" });
      expect(tasks.get("a")).toEqual(first);
      tasks.markDispatched("a", "d", "m", 3);
      const dispatched = tasks.get("a");
      tasks.savePending(pending("a", 10));
      expect(tasks.get("a")).toEqual(dispatched);
      expect(dispatched).toMatchObject({ status: "dispatched", attempts: 1, seq: 1 });
      // An active duplicate does not drop the commands held for the run in progress.
      expect(tasks.heldCommands("a")).toEqual(["kept"]);
      expect(ids(tasks.loadActive())).toEqual(["a", "b"]);
    });

    test("totalReceived counts each task id once: not retries, not duplicates, not lowered by pruning", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      expect(tasks.totalReceived()).toBe(0);
      tasks.savePending(pending("a", 1));
      tasks.savePending(pending("b", 2));
      tasks.savePending(pending("a", 3)); // active duplicate
      expect(tasks.totalReceived()).toBe(2);
      tasks.markEnded("a", "failed", 4, null);
      tasks.savePending(pending("a", 5)); // a new attempt, not a new task
      expect(tasks.totalReceived()).toBe(2);
      tasks.savePending(pending("c", 6));
      for (const id of ["a", "b", "c"]) tasks.markEnded(id, "completed", 7, null);
      expect(pruneNow(tasks, 0)).toBe(3);
      expect(tasks.totalReceived()).toBe(3);
    });

    test("markDispatched, markEnded and setReportedStatus update the row", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      tasks.savePending(pending("a", 1));
      tasks.markDispatched("a", "daemon-1", "machine-1", 10);
      expect(tasks.get("a")).toMatchObject({
        status: "dispatched",
        dispatchedTo: "daemon-1",
        machineId: "machine-1",
        dispatchedAt: 10,
      });
      tasks.setReportedStatus("a", "running");
      tasks.markEnded("a", "cancelled", 20, "by user");
      expect(tasks.get("a")).toMatchObject({
        status: "cancelled",
        completedAt: 20,
        error: "by user",
        lastReportedStatus: "running",
      });
      // An ended task stays as it ended.
      tasks.markEnded("a", "failed", 30, "late");
      expect(tasks.get("a")).toMatchObject({ status: "cancelled", completedAt: 20 });
      expect(() => tasks.markEnded("a", "pending", 21, null)).toThrow(RangeError);
      expect(() => tasks.markEnded("a", "dispatched", 21, null)).toThrow(RangeError);
    });

    test("loadActive returns pending and dispatched tasks in FIFO order", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      for (const [i, id] of ["a", "b", "c", "d", "e"].entries()) tasks.savePending(pending(id, i));
      tasks.markDispatched("b", "d", "m", 10);
      tasks.markEnded("c", "completed", 11, null);
      tasks.markDispatched("d", "d", "m", 12);
      tasks.markEnded("d", "lost", 13, null);
      expect(tasks.loadActive().map((t) => [t.taskId, t.status])).toEqual([
        ["a", "pending"],
        ["b", "dispatched"],
        ["e", "pending"],
      ]);
    });

    test("list pages newest first and counts the filtered total", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      // Newest received first, by arrival: b and c share a millisecond.
      const times: [string, number][] = [
        ["a", 10],
        ["b", 20],
        ["c", 20],
        ["d", 30],
        ["e", 40],
      ];
      for (const [id, at] of times) tasks.savePending(pending(id, at));
      tasks.markEnded("b", "completed", 50, null);
      tasks.markEnded("d", "completed", 51, null);
      // A new attempt of an ended task is the newest arrival.
      tasks.markEnded("a", "failed", 52, "x");
      tasks.savePending(pending("a", 60));

      expect(ids(tasks.list({ limit: 10, offset: 0 }).tasks)).toEqual(["a", "e", "d", "c", "b"]);
      const page = tasks.list({ limit: 2, offset: 1 });
      expect({ ids: ids(page.tasks), total: page.total }).toEqual({ ids: ["e", "d"], total: 5 });
      const done = tasks.list({ limit: 1, offset: 0, status: "completed" });
      expect({ ids: ids(done.tasks), total: done.total }).toEqual({ ids: ["d"], total: 2 });
      const pendingNow = tasks.list({ limit: 5, offset: 0, status: "pending" });
      expect(ids(pendingNow.tasks)).toEqual(["a", "e", "c"]);
      expect(tasks.list({ limit: 5, offset: 0, status: "lost" })).toEqual({ tasks: [], total: 0 });
    });

    test("countByStatus reports all six statuses", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      const empty = { pending: 0, dispatched: 0, completed: 0, failed: 0, cancelled: 0, lost: 0 };
      expect(tasks.countByStatus()).toEqual(empty);
      for (const id of ["a", "b", "c", "d"]) tasks.savePending(pending(id, 1));
      tasks.markDispatched("a", "d", "m", 2);
      tasks.markEnded("b", "failed", 3, "x");
      tasks.markEnded("c", "failed", 3, "y");
      expect(tasks.countByStatus()).toEqual({ ...empty, pending: 1, dispatched: 1, failed: 2 });
    });

    test("prune deletes the oldest ended tasks beyond keep and never active ones", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      const ended: [string, TaskStatus, number][] = [
        ["old", "completed", 100],
        ["older", "failed", 50],
        ["mid", "cancelled", 200],
        ["new", "lost", 300],
      ];
      for (const [id] of ended) tasks.savePending(pending(id, 1));
      tasks.holdCommand("older", "goes with its task");
      for (const [id, status, at] of ended) tasks.markEnded(id, status, at, null);
      tasks.savePending(pending("queued", 2));
      tasks.savePending(pending("running", 3));
      tasks.markDispatched("running", "d", "m", 4);

      expect(pruneNow(tasks, 2)).toBe(2);
      expect(
        ["old", "older", "mid", "new", "queued", "running"].map((id) => tasks.get(id) !== null),
      ).toEqual([false, false, true, true, true, true]);
      expect(tasks.heldCommands("older")).toEqual([]);
      expect(pruneNow(tasks, 2)).toBe(0);
      expect(pruneNow(tasks, 0)).toBe(2);
      expect(pruneNow(tasks, 0)).toBe(0);
      expect(ids(tasks.loadActive())).toEqual(["queued", "running"]);
    });

    test("prune goes a step at a time and counts ended rows across attempts", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      tenEndedOneRetried(tasks);
      expect(pruneNow(tasks, 2, 3)).toBe(3);
      expect(["t1", "t2", "t3", "t4"].map((id) => tasks.get(id) !== null)).toEqual([
        false,
        false,
        false,
        true,
      ]);
      // 9 ended - 3 pruned = 6 left, keep 2: four more go, oldest first; t0 stays (pending).
      expect(pruneNow(tasks, 2)).toBe(4);
      expect(pruneNow(tasks, 2)).toBe(0);
      expect(ids(tasks.loadActive())).toEqual(["t0"]);
      expect(["t8", "t9"].map((id) => tasks.get(id)?.status)).toEqual(["completed", "completed"]);
    });

    test("held commands come back in arrival order, per task, until dropped", () => {
      using s = backend.open();
      const { tasks } = s.stores;
      tasks.savePending(pending("a", 1));
      tasks.savePending(pending("b", 1));
      for (const frame of ["1", "2", "3"]) tasks.holdCommand("a", frame);
      tasks.holdCommand("b", "other");
      tasks.holdCommand("a", "4");
      expect(tasks.heldCommands("a")).toEqual(["1", "2", "3", "4"]);
      // Reading does not consume them.
      expect(tasks.heldCommands("a")).toEqual(["1", "2", "3", "4"]);
      tasks.dropHeldCommands("a");
      expect(tasks.heldCommands("a")).toEqual([]);
      tasks.dropHeldCommands("a");
      expect(tasks.heldCommands("b")).toEqual(["other"]);
      tasks.holdCommand("a", "after the drop");
      expect(tasks.heldCommands("a")).toEqual(["after the drop"]);
    });
  });
}

describe("TaskStore (SQLite only)", () => {
  test("FIFO order and seq survive a reopen", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file);
      for (const id of ["a", "b", "c"]) db.stores.tasks.savePending(pending(id, 1));
      db.stores.tasks.markEnded("a", "completed", 2, null);
    }
    using db = openStores(file);
    db.stores.tasks.savePending(pending("a", 3));
    db.stores.tasks.savePending(pending("d", 4));
    expect([db.stores.tasks.get("a")?.seq, db.stores.tasks.get("d")?.seq]).toEqual([4, 5]);
    expect(ids(db.stores.tasks.loadActive())).toEqual(["b", "c", "a", "d"]);
  });

  test("the sequence continues after a reopen whatever the status of the newest task", () => {
    // No index leads with seq: the store reads MAX(seq) status by status (task-store.ts).
    for (const status of TASK_STATUSES) {
      using dir = tempDir();
      const file = dir.file("relay.db");
      {
        using db = openStores(file);
        const { tasks } = db.stores;
        for (const id of ["a", "b", "c"]) tasks.savePending(pending(id, 1));
        if (status === "dispatched") tasks.markDispatched("c", "d", "m", 2);
        else if (status !== "pending") tasks.markEnded("c", status, 2, null);
      }
      using db = openStores(file);
      db.stores.tasks.savePending(pending("d", 3));
      expect([status, db.stores.tasks.get("d")?.seq]).toEqual([status, 4]);
    }
  });

  test("the ended-rows count and the sequence continue after a reopen", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file);
      tenEndedOneRetried(db.stores.tasks);
      expect(pruneNow(db.stores.tasks, 2, 3)).toBe(3);
    }
    using db = openStores(file);
    const { tasks } = db.stores;
    expect(pruneNow(tasks, 2)).toBe(4);
    expect(pruneNow(tasks, 2)).toBe(0);
    expect(ids(tasks.loadActive())).toEqual(["t0"]);
    // Sequence numbers continue after a reopen: a new task queues behind t0.
    tasks.savePending(pending("later", 1));
    expect(ids(tasks.loadActive())).toEqual(["t0", "later"]);
  });

  test("totalReceived is rows kept plus rows pruned: it survives pruning and a reopen, and a garbled count reads as 0", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file);
      const { tasks } = db.stores;
      for (const id of ["a", "b", "c"]) tasks.savePending(pending(id, 1));
      tasks.markEnded("a", "completed", 2, null);
      tasks.markEnded("b", "failed", 3, null);
      expect(pruneNow(tasks, 0)).toBe(2);
      expect(tasks.totalReceived()).toBe(3);
    }
    {
      using db = openStores(file);
      const { tasks, meta } = db.stores;
      expect(tasks.totalReceived()).toBe(3);
      expect(meta.get(PRUNED_KEY)).toBe("2");
      tasks.savePending(pending("d", 4));
      // A new attempt of a kept task is not a new task.
      tasks.markEnded("c", "completed", 5, null);
      tasks.savePending(pending("c", 6));
      expect(tasks.totalReceived()).toBe(4);
      meta.set(PRUNED_KEY, "not a number");
    }
    {
      using db = openStores(file);
      // Only the rows kept are counted then: c and d.
      expect(db.stores.tasks.totalReceived()).toBe(2);
    }
  });

  test("pruning cascades to the pruned tasks' held commands", () => {
    using db = openStores();
    const { tasks } = db.stores;
    tasks.savePending(pending("a", 1));
    tasks.savePending(pending("b", 1));
    tasks.holdCommand("a", "x");
    tasks.holdCommand("b", "y");
    tasks.markEnded("a", "completed", 2, null);
    expect(pruneNow(tasks, 0)).toBe(1);
    expect(row(db.sqlite, "SELECT COUNT(*) AS n FROM held_commands")).toEqual({ n: 1 });
    expect(tasks.heldCommands("b")).toEqual(["y"]);
  });

  test("a command for an unknown task is a bug in the caller: the foreign key refuses it", () => {
    using db = openStores();
    expect(() => db.stores.tasks.holdCommand("unknown", "x")).toThrow(/FOREIGN KEY/);
    expect(row(db.sqlite, "SELECT COUNT(*) AS n FROM held_commands")).toEqual({ n: 0 });
  });
});

describe("TaskStore behind a write batch", () => {
  const dispatchedRow = (sqlite: import("bun:sqlite").Database, taskId: string) =>
    row(
      sqlite,
      `SELECT status, dispatched_to AS daemon, machine_id AS machine, dispatched_at AS at,
         attempts FROM tasks WHERE task_id = '${taskId}'`,
    );

  test("a task received and dispatched in one turn is written once, already dispatched", () => {
    using db = openBatched();
    const { tasks } = db.stores;
    const statements: string[] = [];
    const trace = (sql: string) => statements.push(sql.trim().split(/\s+/)[0] as string);
    tasks.savePending(pending("a", 1));
    tasks.markDispatched("a", "d1", "m1", 5);
    // Statements are built at their first use, in the flush: record which ones it builds.
    const original = db.sqlite.prepare.bind(db.sqlite);
    db.sqlite.prepare = ((sql: string, ...rest: unknown[]) => {
      trace(sql);
      return (original as (...a: unknown[]) => unknown)(sql, ...rest);
    }) as typeof db.sqlite.prepare;
    db.endTurn();
    expect(dispatchedRow(db.sqlite, "a")).toEqual({
      status: "dispatched",
      daemon: "d1",
      machine: "m1",
      at: 5,
      attempts: 1,
    });
    // Built at first use: the insert and the counter, never the dispatch update.
    expect(statements.filter((s) => s === "UPDATE")).toEqual([]);
    expect(tasks.totalReceived()).toBe(1);
  });

  test("a dispatch after the insert was applied is its own update, and both survive a failed commit", () => {
    using db = openBatched();
    const { tasks } = db.stores;
    tasks.savePending(pending("a", 1));
    tasks.savePending(pending("b", 1));
    tasks.markDispatched("b", "d1", "m1", 4);
    db.tx.failCommits = 1;
    db.endTurn();
    expect(tasks.get("a")).toBeNull();
    // After the failed attempt applied the inserts: this dispatch is an update queued behind them.
    tasks.markDispatched("a", "d2", "m2", 6);
    db.clock.advance(1000);
    expect(dispatchedRow(db.sqlite, "a")).toEqual({
      status: "dispatched",
      daemon: "d2",
      machine: "m2",
      at: 6,
      attempts: 1,
    });
    expect(dispatchedRow(db.sqlite, "b")).toEqual({
      status: "dispatched",
      daemon: "d1",
      machine: "m1",
      at: 4,
      attempts: 1,
    });
    expect(tasks.totalReceived()).toBe(2);
  });

  test("a new attempt dispatched in its turn resets the ended row and counts the attempt", () => {
    using db = openBatched();
    const { tasks } = db.stores;
    tasks.savePending(pending("a", 1));
    tasks.markDispatched("a", "d1", "m1", 2);
    tasks.markEnded("a", "failed", 3, "boom");
    db.endTurn();
    tasks.savePending(pending("a", 10));
    tasks.markDispatched("a", "d2", "m2", 11);
    db.endTurn();
    expect(tasks.get("a")).toMatchObject({
      status: "dispatched",
      dispatchedTo: "d2",
      machineId: "m2",
      receivedAt: 10,
      dispatchedAt: 11,
      completedAt: null,
      error: null,
      attempts: 2,
    });
    expect(tasks.totalReceived()).toBe(1);
  });
});
