#!/usr/bin/env bun
/**
 * `bun run bench/store-costs.ts`: what each SQLite write on the relay's
 * hot paths costs, measured in-process against the repository's own stores
 * (src/store) on a file in the temp directory, WAL as the relay opens it.
 * It isolates the storage share of the dispatch and drain figures of
 * `bun run bench`, and the history prune that the relay runs every 1000
 * ended tasks. Counts are fixed and small; it takes a few seconds.
 */
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../src/core/clock.ts";
import type { Stores, TaskEvent } from "../src/core/ports.ts";
import { createStores, openDatabase } from "../src/store/database.ts";
import { createWriteBatch, sqliteTransactions, type WriteBatch } from "../src/store/write-batch.ts";
import { clockTicks, cpuTimeMs } from "./proc.ts";

const TASKS = 5_000;
/** Tasks per commit in the grouped variant: about one event-loop turn under load. */
const GROUP = 64;
const HISTORY_KEEP = 100_000;
/** Tasks ended between two prunes at ~20k tasks/s (the sweep runs once a second). */
const BURST = 20_000;
const SPAWN = JSON.stringify({ type: "spawnTask", taskId: "x", taskName: "bench task" });
const OUTBOX_MAX = 64 * 1024 * 1024;
const OUTPUT = JSON.stringify({ type: "taskOutput", taskId: "x", output: "x".repeat(200) });

interface Row {
  what: string;
  wallUs: number;
  cpuUs: number;
}

function measure(what: string, n: number, fn: () => void): Row {
  const cpu0 = cpuTimeMs(process.pid);
  const t0 = performance.now();
  fn();
  return {
    what,
    wallUs: ((performance.now() - t0) * 1000) / n,
    cpuUs: ((cpuTimeMs(process.pid) - cpu0) * 1000) / n,
  };
}

/** One task's lifecycle as the relay writes it: spawn (and count), dispatch, end; `between` runs after each write. */
function lifecycle(stores: Stores, id: string, now: number, between: () => void = () => {}): void {
  stores.tasks.savePending({ taskId: id, taskName: "bench", spawnFrame: SPAWN, receivedAt: now });
  between();
  stores.tasks.markDispatched(id, "daemon", "machine", now);
  between();
  stores.tasks.markEnded(id, "completed", now, null);
  between();
}

/**
 * The same lifecycle with what its timeline writes (src/core/task-timeline.ts):
 * one end event, and a queued event when the task had to wait.
 */
function lifecycleWithTimeline(stores: Stores, id: string, now: number, queued: boolean): void {
  stores.tasks.savePending({ taskId: id, taskName: "bench", spawnFrame: SPAWN, receivedAt: now });
  let n = 0;
  if (queued) stores.taskEvents.append(id, { ...endEvent(n++), kind: "queued" }, null);
  stores.tasks.markDispatched(id, "daemon", "machine", now);
  stores.tasks.markEnded(id, "completed", now, null);
  stores.taskEvents.append(id, endEvent(n), null);
}

function endEvent(n: number): TaskEvent {
  return {
    n,
    at: n,
    kind: "completed",
    machineId: "machine",
    detail: null,
    upstream: "sent",
    outputFrames: 0,
    outputBytes: 0,
  };
}

/** `GROUP` writes per commit, through a write batch flushed by hand (as the relay's turn does). */
function grouped(batch: WriteBatch, n: number, each: (i: number) => void): void {
  for (let start = 0; start < n; start += GROUP) {
    for (let i = start; i < Math.min(n, start + GROUP); i++) each(i);
    batch.flush();
  }
}

function main(): void {
  const path = join(tmpdir(), `makima-relay-store-costs-${process.pid}.db`);
  const database = openDatabase(path);
  // Never scheduled: every commit below is a flush by hand.
  const batch = createWriteBatch(sqliteTransactions(database.sqlite), {
    clock: systemClock,
    schedule: () => {},
  });
  const batched = createStores(database.db, database.sqlite, { logKeep: 200, batch });
  const commit = () => batch.flush();
  let next = 0;
  const id = () => `task-${next++}`;
  const rows: Row[] = [];
  try {
    rows.push(
      measure("task lifecycle, one commit per write (3 writes)", TASKS, () => {
        for (let i = 0; i < TASKS; i++) lifecycle(batched, id(), i, commit);
      }),
      measure(`task lifecycle, ${GROUP} tasks per commit`, TASKS, () => {
        grouped(batch, TASKS, (i) => lifecycle(batched, id(), i));
      }),
      measure(`task lifecycle and its end event, ${GROUP} tasks per commit`, TASKS, () => {
        grouped(batch, TASKS, (i) => lifecycleWithTimeline(batched, id(), i, false));
      }),
      measure(`task lifecycle, queued and end events, ${GROUP} tasks per commit`, TASKS, () => {
        grouped(batch, TASKS, (i) => lifecycleWithTimeline(batched, id(), i, true));
      }),
      measure("outbox append, one commit per frame", TASKS, () => {
        for (let i = 0; i < TASKS; i++) {
          batched.outbox.append(OUTPUT, false, OUTBOX_MAX);
          commit();
        }
      }),
      measure(`outbox append, ${GROUP} frames per commit`, TASKS, () => {
        grouped(batch, TASKS, () => batched.outbox.append(OUTPUT, false, OUTBOX_MAX));
      }),
    );
    // One timeline event alone, on tasks that exist already (as in the relay).
    const tasks = Array.from({ length: TASKS }, id);
    grouped(batch, TASKS, (i) =>
      batched.tasks.savePending({
        taskId: tasks[i] as string,
        taskName: "b",
        spawnFrame: SPAWN,
        receivedAt: i,
      }),
    );
    rows.push(
      measure(`timeline event append, ${GROUP} per commit`, TASKS, () => {
        grouped(batch, TASKS, (i) =>
          batched.taskEvents.append(tasks[i] as string, endEvent(i), null),
        );
      }),
    );
    // Fill the history to its default limit, then time the prune the relay runs every 1000 ends.
    const keep = HISTORY_KEEP.toLocaleString("en-US");
    grouped(batch, HISTORY_KEEP + 1000 - next, (i) => lifecycle(batched, id(), i));
    rows.push(
      measure(`prune of 1,000 rows at ${keep} ended tasks (one call)`, 1, () => {
        batched.tasks.prune(HISTORY_KEEP);
        commit();
      }),
    );
    // The relay prunes from its sweep, at most once a second: at 20k tasks/s a call deletes 20k rows.
    grouped(batch, BURST, (i) => lifecycle(batched, id(), i));
    rows.push(
      measure(
        `prune of ${BURST.toLocaleString("en-US")} rows at ${keep} ended tasks (one call)`,
        1,
        () => {
          batched.tasks.prune(HISTORY_KEEP);
          commit();
        },
      ),
    );
  } finally {
    database.close();
    for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
  }
  console.log("| Store operation | Wall µs | CPU µs |\n|---|--:|--:|");
  for (const r of rows)
    console.log(`| ${r.what} | ${r.wallUs.toFixed(1)} | ${r.cpuUs.toFixed(1)} |`);
  console.log(
    `\n${TASKS} items per row; CPU time has a ${1000 / clockTicks()} ms resolution and counts every thread.`,
  );
}

main();
