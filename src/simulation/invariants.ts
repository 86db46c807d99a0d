/**
 * The promises of docs/protocol.md, as named checks. Each takes what it needs
 * and reports through `fail(name, message)`; the world calls them at the
 * moment the promise is about (a dispatch, a frame on a socket, the end of a
 * step, the end of the run).
 */
import { canTakeTask } from "../core/daemon.ts";
import type { Stores } from "../core/ports.ts";
import type { Relay } from "../core/relay.ts";
import { ACTIVE, type Attempt, type RelayModel, tagOf } from "./model.ts";

export type Fail = (invariant: string, message: string) => void;

/** What the world saw on one daemon connection (for the per-connection checks). */
export interface ConnWatch {
  /** Tasks whose spawnTask reached this connection. */
  readonly spawned: Set<string>;
  /**
   * Spawned tasks whose omissions count (the relay's RECONCILE_SETTLE_MS rule):
   * sent once the socket had been read without a pause for that long, listed
   * since, or read without a pause for that long after.
   */
  readonly countable: Set<string>;
  /** Tasks the relay gave back at authentication (settled by the first heartbeat). */
  inherited: Set<string>;
  /** Heartbeats the relay read on this connection since it authenticated. */
  heartbeats: number;
  readonly misses: Map<string, number>;
  /** Commands that must come next, right after a spawnTask. */
  expect: { spawnId: number; cmds: number[]; relaxed: boolean } | null;
}

export const newWatch = (): ConnWatch => ({
  spawned: new Set(),
  countable: new Set(),
  inherited: new Set(),
  heartbeats: 0,
  misses: new Map(),
  expect: null,
});

/** taskHeldByOneDaemon: no task sits in two connected daemons' sets, and each is its machine's. */
export function taskHeldByOneDaemon(relay: Relay, model: RelayModel, fail: Fail): void {
  const holder = new Map<string, string>();
  for (const d of relay.registry.all()) {
    for (const taskId of d.holds) {
      const other = holder.get(taskId);
      if (other) fail("taskHeldByOneDaemon", `${taskId} is held by ${other} and ${d.machineId}`);
      holder.set(taskId, d.machineId);
      const a = model.liveAttempt(taskId);
      if (a?.live !== "dispatched" || a.liveMachine !== d.machineId)
        fail(
          "taskHeldByOneDaemon",
          `${d.machineId} holds ${taskId}, which is not dispatched to it`,
        );
    }
  }
}

/** spawnDeliveredOnce: one attempt's spawnTask reaches a daemon at most once (a re-spawn is a new attempt). */
export function spawnDeliveredOnce(attempt: Attempt, machineId: string, fail: Fail): void {
  attempt.deliveries += 1;
  if (attempt.deliveries > 1)
    fail(
      "spawnDeliveredOnce",
      `spawn ${attempt.spawnId} of ${attempt.taskId} reached daemons ${attempt.deliveries} times (now ${machineId})`,
    );
}

/** sentOnlyAfterCommit (daemon side): a spawnTask leaves only once its dispatch is committed. */
export function spawnSentAfterCommit(attempt: Attempt, machineId: string, fail: Fail): void {
  if (attempt.durableMachine !== machineId || attempt.durable === "pending" || !attempt.durable)
    fail(
      "sentOnlyAfterCommit",
      `spawn ${attempt.spawnId} of ${attempt.taskId} reached ${machineId} while the database says ${attempt.durable ?? "nothing"} (${attempt.durableMachine ?? "-"})`,
    );
}

/**
 * dispatchWithinCapacity: right after a dispatch, the daemon holds at most its
 * capacity. (Reattaching can bring back more than a lowered capacity; then it
 * gets no new task until it is under again, which this checks.)
 */
export function dispatchWithinCapacity(relay: Relay, machineId: string, fail: Fail): void {
  const d = relay.registry.byMachineId(machineId);
  if (!d) fail("dispatchWithinCapacity", `dispatched to ${machineId}, which is not connected`);
  else if (d.holds.size > d.capacity)
    fail("dispatchWithinCapacity", `${machineId} holds ${d.holds.size} > capacity ${d.capacity}`);
}

/** dispatchPicksLeastLoaded: no other daemon that could take the task had fewer tasks. */
export function dispatchPicksLeastLoaded(relay: Relay, machineId: string, fail: Fail): void {
  const chosen = relay.registry.byMachineId(machineId);
  if (!chosen) return;
  const load = chosen.holds.size - 1;
  for (const d of relay.registry.all()) {
    if (d !== chosen && canTakeTask(d) && d.holds.size < load)
      fail(
        "dispatchPicksLeastLoaded",
        `dispatched to ${machineId} (${load} tasks) while ${d.machineId} had ${d.holds.size} of ${d.capacity}`,
      );
  }
}

/** noIdleSlotWhileQueued: after a step, no task waits while a connected daemon could take it. */
export function noIdleSlotWhileQueued(relay: Relay, fail: Fail): void {
  if (relay.tasks.queued === 0) return;
  for (const d of relay.registry.all()) {
    if (canTakeTask(d))
      fail(
        "noIdleSlotWhileQueued",
        `${relay.tasks.queued} tasks queued while ${d.machineId} holds ${d.holds.size} of ${d.capacity}`,
      );
  }
}

/** statusMatchesStore: with the batch healthy and flushed, /status counts and the queue equal the database. */
export function statusMatchesStore(relay: Relay, stores: Stores, fail: Fail): void {
  const rows = stores.tasks.loadActive();
  const pending = rows.filter((r) => r.status === "pending").map((r) => r.taskId);
  const memory = [...relay.tasks.heartbeatTasks()].sort().join(",");
  const stored = rows
    .map((r) => r.taskId)
    .sort()
    .join(",");
  if (relay.tasks.active !== rows.length || relay.tasks.queued !== pending.length)
    fail(
      "statusMatchesStore",
      `relay says ${relay.tasks.active} active / ${relay.tasks.queued} queued, database ${rows.length} / ${pending.length}`,
    );
  else if (memory !== stored)
    fail("statusMatchesStore", `active tasks differ: relay [${memory}] database [${stored}]`);
  else if (relay.tasks.queuedIds().join(",") !== pending.join(","))
    fail(
      "statusMatchesStore",
      `queue order differs: relay [${relay.tasks.queuedIds().join(",")}] database [${pending.join(",")}]`,
    );
}

/** heldCommandsFollowSpawn: commands held for a queued task come right after its spawnTask, in order. */
export function heldCommandsFollowSpawn(watch: ConnWatch, text: string, fail: Fail): void {
  const expect = watch.expect;
  if (!expect || expect.cmds.length === 0) return;
  const cmdId = text.startsWith('{"type":"spawnTask"') ? null : tagOf(text, "cmdId");
  if (cmdId !== null && cmdId === expect.cmds[0]) {
    expect.cmds.shift();
    return;
  }
  if (!expect.relaxed)
    fail(
      "heldCommandsFollowSpawn",
      `after spawn ${expect.spawnId} the daemon expected held command ${expect.cmds[0]} but got ${text.slice(0, 80)}`,
    );
  watch.expect = null;
}

/** commandsInOrder: a daemon gets a task's commands in the order the server sent them (repeats only across a crash). */
export function commandsInOrder(
  last: Map<string, { cmdId: number; epoch: number }>,
  key: string,
  cmdId: number,
  epoch: number,
  fail: Fail,
): void {
  const before = last.get(key);
  if (before && cmdId <= before.cmdId && before.epoch >= epoch)
    fail("commandsInOrder", `${key} got command ${cmdId} after command ${before.cmdId}`);
  last.set(key, { cmdId, epoch });
}

/**
 * noStaleCharge: once reconciliation has run, a live daemon is not charged with
 * a task it did not list: the first heartbeat after (re)authentication settles
 * what it got back, two consecutive ones after the spawnTask reached it settle the rest.
 */
export function noStaleCharge(
  watch: ConnWatch,
  charged: Iterable<string>,
  listed: ReadonlySet<string>,
  machineId: string,
  settled: boolean,
  fail: Fail,
): void {
  watch.heartbeats += 1;
  for (const taskId of charged) {
    if (listed.has(taskId)) {
      watch.misses.delete(taskId);
      watch.countable.add(taskId);
      continue;
    }
    if (settled) watch.countable.add(taskId);
    if (watch.inherited.has(taskId) && watch.heartbeats === 1) {
      fail(
        "noStaleCharge",
        `${machineId} still holds ${taskId} after its first heartbeat omitted it`,
      );
      return;
    }
    if (!watch.spawned.has(taskId) && !watch.inherited.has(taskId)) continue;
    if (!watch.countable.has(taskId)) continue;
    const misses = (watch.misses.get(taskId) ?? 0) + 1;
    watch.misses.set(taskId, misses);
    if (misses >= 2)
      fail(
        "noStaleCharge",
        `${machineId} still holds ${taskId} after ${misses} heartbeats omitted it`,
      );
  }
}

/**
 * noSpuriousLoss: a task its connected daemon runs, and lists in every
 * heartbeat written since it got the spawnTask, is not declared lost.
 */
export function noSpuriousLoss(
  attempt: Attempt,
  machineId: string,
  runs: boolean,
  fail: Fail,
): void {
  if (runs)
    fail(
      "noSpuriousLoss",
      `${attempt.taskId} (spawn ${attempt.spawnId}) declared lost by reconciliation while ${machineId} runs it`,
    );
}

const RELAY_OUTCOMES: Record<string, "lost" | "cancelled"> = {
  "daemon lost": "lost",
  "interrupted before dispatch": "cancelled",
};

/**
 * everyAttemptOneOutcome / sentOnlyAfterCommit (server side), on arrival: the
 * outcome belongs to an attempt whose end is committed, and is its first, or a
 * copy resent after a crash. `attemptId` is the attempt a daemon's taskComplete
 * counted for (null: the relay's own lost/cancelled notice).
 */
export function outcomeArrived(
  model: RelayModel,
  text: string,
  attemptId: number | null,
  fail: Fail,
): void {
  const frame = JSON.parse(text) as { taskId: string; error?: string };
  let attempt: Attempt | undefined;
  if (attemptId !== null) {
    attempt = model.attempts.get(attemptId);
    if (attempt && attempt.durable !== "completed" && attempt.durable !== "failed") {
      fail(
        "sentOnlyAfterCommit",
        `taskComplete for ${frame.taskId} reached the server while the database says ${attempt.durable}`,
      );
      return;
    }
  } else {
    const status = RELAY_OUTCOMES[frame.error ?? ""];
    const list = model.byTask.get(frame.taskId) ?? [];
    attempt =
      list.find((a) => a.durable === status && a.outcomes.length === 0) ??
      list.findLast((a) => a.durable === status && a.outcomes.some((o) => o.text === text));
    if (!status || !attempt) {
      fail(
        "sentOnlyAfterCommit",
        `the server got ${text} but no attempt of ${frame.taskId} has that end committed`,
      );
      return;
    }
  }
  if (!attempt) {
    fail("everyAttemptOneOutcome", `outcome ${text} for an attempt nobody spawned`);
    return;
  }
  const same = attempt.outcomes.find((o) => o.text === text);
  if (same) {
    if (same.epoch >= model.epoch)
      fail(
        "everyAttemptOneOutcome",
        `${attempt.taskId} (spawn ${attempt.spawnId}) got the same outcome twice without a crash`,
      );
    same.copies += 1;
    same.epoch = model.epoch;
    return;
  }
  if (attempt.outcomes.length > 0)
    fail(
      "everyAttemptOneOutcome",
      `${attempt.taskId} (spawn ${attempt.spawnId}) got a second outcome ${text} after ${attempt.outcomes[0]?.text}`,
    );
  attempt.outcomes.push({ text, epoch: model.epoch, copies: 1 });
}

/** everyAttemptOneOutcome, end of run: every attempt the relay accepted ended upstream once. */
export function everyAttemptOneOutcome(model: RelayModel, fail: Fail): void {
  for (const a of model.accepted()) {
    if (ACTIVE.has(a.durable))
      fail("everyAttemptOneOutcome", `${a.taskId} (spawn ${a.spawnId}) is still ${a.durable}`);
    else if (a.outcomes.length === 0)
      fail(
        "everyAttemptOneOutcome",
        `${a.taskId} (spawn ${a.spawnId}) ended ${a.durable} but the server never heard`,
      );
  }
}
