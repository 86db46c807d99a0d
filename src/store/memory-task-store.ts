/**
 * The task store in memory (memory-stores.ts has the others): the same contract
 * as task-store.ts, run by the same behaviour suite.
 */
import {
  ACTIVE_STATUSES,
  type TaskQuery,
  type TaskRecord,
  type TaskStatus,
  type TaskStore,
  type TaskSummary,
  zeroCountsByStatus,
} from "../core/ports.ts";
import { boundNullable, boundText, HISTORY_TEXT_MAX_BYTES } from "../core/text-bound.ts";
import { directWriter, type Writer } from "./write-batch.ts";

const isActive = (s: TaskStatus): boolean => ACTIVE_STATUSES.includes(s);

type PendingTask = Parameters<TaskStore["savePending"]>[0];

export class MemoryTaskStore implements TaskStore {
  readonly rows = new Map<string, TaskRecord>();
  private readonly held = new Map<string, string[]>();
  private seq = 0;
  private received = 0;

  constructor(
    private readonly writer: Writer = directWriter,
    /** The task's timeline goes with it (pruned, or a new attempt), as task-store.ts deletes task_events rows. */
    private readonly events?: { forget(taskId: string): void },
  ) {}

  get(taskId: string): TaskRecord | null {
    const row = this.rows.get(taskId);
    return row ? { ...row } : null;
  }

  savePending(task: PendingTask): void {
    this.writer.write(() => {
      const existing = this.rows.get(task.taskId);
      if (existing && isActive(existing.status)) return;
      this.rows.set(task.taskId, {
        ...task,
        status: "pending",
        dispatchedTo: null,
        machineId: null,
        dispatchedAt: null,
        completedAt: null,
        error: null,
        lastReportedStatus: null,
        attempts: (existing?.attempts ?? 0) + 1,
        seq: ++this.seq,
      });
      if (existing) {
        this.held.delete(task.taskId);
        this.events?.forget(task.taskId);
      } else this.received += 1;
    });
  }

  private update(taskId: string, patch: Partial<TaskRecord>): void {
    this.writer.write(() => {
      const row = this.rows.get(taskId);
      if (row) Object.assign(row, patch);
    });
  }

  markDispatched(taskId: string, daemonId: string, machineId: string, at: number): void {
    this.update(taskId, {
      status: "dispatched",
      dispatchedTo: daemonId,
      machineId,
      dispatchedAt: at,
    });
  }

  markEnded(taskId: string, status: TaskStatus, at: number, error: string | null): void {
    if (isActive(status)) throw new RangeError(`markEnded with active status ${status}`);
    // Bounded as in the SQLite store (task-store.ts), so both keep the same text.
    const kept = boundNullable(error, HISTORY_TEXT_MAX_BYTES);
    this.writer.write(() => {
      const row = this.rows.get(taskId);
      if (row && isActive(row.status)) Object.assign(row, { status, completedAt: at, error: kept });
    });
  }

  setReportedStatus(taskId: string, status: string): void {
    this.update(taskId, { lastReportedStatus: boundText(status, HISTORY_TEXT_MAX_BYTES) });
  }

  loadActive(): TaskRecord[] {
    return [...this.rows.values()]
      .filter((r) => isActive(r.status))
      .sort((a, b) => a.seq - b.seq)
      .map((r) => ({ ...r }));
  }

  list(query: TaskQuery): { tasks: TaskSummary[]; total: number } {
    const matching = [...this.rows.values()]
      .filter((r) => query.status === undefined || r.status === query.status)
      .sort((a, b) => b.seq - a.seq);
    return {
      tasks: matching
        .slice(query.offset, query.offset + query.limit)
        .map(({ spawnFrame: _spawnFrame, ...r }) => r),
      total: matching.length,
    };
  }

  countByStatus(): Record<TaskStatus, number> {
    const counts = zeroCountsByStatus();
    for (const r of this.rows.values()) counts[r.status] += 1;
    return counts;
  }

  totalReceived(): number {
    return this.received;
  }

  prune(keep: number, maxRows = Number.MAX_SAFE_INTEGER, pruned?: (deleted: number) => void): void {
    this.writer.write(() => {
      const ended = [...this.rows.values()]
        .filter((r) => !isActive(r.status))
        .sort((a, b) => (a.completedAt ?? 0) - (b.completedAt ?? 0) || a.seq - b.seq);
      const gone = ended.slice(0, Math.min(maxRows, Math.max(0, ended.length - Math.max(0, keep))));
      for (const r of gone) {
        this.rows.delete(r.taskId);
        this.held.delete(r.taskId);
        this.events?.forget(r.taskId);
      }
      return gone.length;
    }, pruned);
  }

  holdCommand(taskId: string, frame: string): void {
    this.writer.write(() => {
      const list = this.held.get(taskId) ?? [];
      list.push(frame);
      this.held.set(taskId, list);
    });
  }

  dropHeldCommands(taskId: string): void {
    this.writer.write(() => this.held.delete(taskId));
  }

  heldCommands(taskId: string): string[] {
    return [...(this.held.get(taskId) ?? [])];
  }
}
