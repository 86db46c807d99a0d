/**
 * The simulation's window on the relay's decisions: wrappers around the write
 * batch and the task store that the core is handed instead of the real ones.
 * They change nothing (they call through), but tell the model what the relay
 * did, at the call and again once the write committed (a no-op write queued
 * right behind it commits in the same transaction or not at all). Bugs planted
 * to prove the simulation can fail live here too, never in product code.
 */
import type { TaskStore } from "../core/ports.ts";
import type { WriteBatch, Writer } from "../store/write-batch.ts";
import type { FaultPlan } from "./faults.ts";
import { type Attempt, type RelayModel, tagOf } from "./model.ts";

/** Bugs the simulation can plant in its own wrappers, to show that a seed catches them. */
export type Plant = "drop-paused-frames" | "drop-completed-writes";

export interface ProbeHooks {
  /** The relay changed a task (in memory; its write is queued). */
  changed(): void;
  /** A dispatch was decided (the daemon's task set already holds it). */
  dispatched(attempt: Attempt, machineId: string): void;
  /** An attempt ended in memory (not committed yet). */
  ended(attempt: Attempt, status: string): void;
}

/** The batch as the stores see it; with `applyFaults`, a write may fail mid-transaction. */
export function probeBatch(batch: WriteBatch, plan: FaultPlan, applyFaults: boolean): WriteBatch {
  const faulty =
    <T>(apply: () => T) =>
    (): T => {
      if (plan.shouldFail("apply")) throw plan.error();
      return apply();
    };
  const proxy: WriteBatch = {
    write(apply, committed, dropped) {
      batch.write(applyFaults ? faulty(apply) : apply, committed, dropped);
    },
    afterCommit: (fn) => batch.afterCommit(fn),
    flush: () => batch.flush(),
    onRollback: (reload) => batch.onRollback(reload),
    get status() {
      return batch.status;
    },
    stop: () => batch.stop(),
  };
  // Passed on only if the batch has it: the stores pick their path by its presence.
  const freeing = batch.writeFreeing?.bind(batch);
  if (freeing)
    proxy.writeFreeing = (apply, committed) =>
      freeing(applyFaults ? faulty(apply) : apply, committed);
  return proxy;
}

export function probeTaskStore(
  inner: TaskStore,
  writer: Writer,
  model: RelayModel,
  hooks: ProbeHooks,
  plant: Plant | null,
): TaskStore {
  const whenCommitted = (fn: () => void): void => writer.write(() => undefined, fn);
  return {
    get: (taskId) => inner.get(taskId),
    savePending(task) {
      inner.savePending(task);
      hooks.changed();
      const spawnId = tagOf(task.spawnFrame, "spawnId");
      const attempt = spawnId === null ? undefined : model.pendingCalled(task.taskId, spawnId);
      if (attempt) whenCommitted(() => model.pendingCommitted(attempt));
    },
    markDispatched(taskId, daemonId, machineId, at) {
      inner.markDispatched(taskId, daemonId, machineId, at);
      hooks.changed();
      const attempt = model.dispatchCalled(taskId, machineId);
      if (!attempt) return;
      hooks.dispatched(attempt, machineId);
      whenCommitted(() => model.dispatchCommitted(attempt, machineId));
    },
    markEnded(taskId, status, at, error) {
      // Planted: a completion is never written, so the database keeps the task dispatched.
      if (plant !== "drop-completed-writes" || status !== "completed")
        inner.markEnded(taskId, status, at, error);
      hooks.changed();
      const attempt = model.endCalled(taskId, status);
      if (!attempt) return;
      hooks.ended(attempt, status);
      whenCommitted(() => model.endCommitted(attempt, status));
    },
    setReportedStatus: (taskId, status) => inner.setReportedStatus(taskId, status),
    loadActive: () => inner.loadActive(),
    list: (query) => inner.list(query),
    countByStatus: () => inner.countByStatus(),
    totalReceived: () => inner.totalReceived(),
    prune: (keep, maxRows, pruned) => {
      inner.prune(keep, maxRows, pruned);
      hooks.changed();
    },
    holdCommand: (taskId, frame) => inner.holdCommand(taskId, frame),
    dropHeldCommands: (taskId) => inner.dropHeldCommands(taskId),
    heldCommands: (taskId) => inner.heldCommands(taskId),
  };
}
