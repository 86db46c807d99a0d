/**
 * Each task's timeline (GET /tasks/:taskId/events): what happened to it, in
 * order, with the time and the machine. This module owns it; the task book,
 * the frame handler and the throttle tell it what happened through
 * TimelineEvents, and it decides what is written.
 *
 * It has to be cheap: the relay dispatches tens of thousands of tasks a
 * second and relays far more output frames. So
 * - reception and dispatch are not written again: the task's own row has
 *   their time, attempt and machine, and `view` reads them from there. A task
 *   dispatched at once costs one row here (its end); one that waited, two;
 * - output frames are counted in memory, and the counts go into the store
 *   with the task's next event, or with an `output` event at most every
 *   `outputEveryMs` while output flows; `view` shows the live counts of an
 *   active task;
 * - a task keeps at most TIMELINE_LIMIT events: the first TIMELINE_HEAD and
 *   the newest ones; each event past the limit deletes the oldest of those.
 */
import type { Clock } from "./clock.ts";
import type {
  EndedStatus,
  TaskEvent,
  TaskEventKind,
  TaskEventStore,
  TaskRecord,
  TaskStore,
  UpstreamDisposition,
} from "./ports.ts";
import { boundNullable } from "./text-bound.ts";

/** Most stored events per task (its attempt); the first TIMELINE_HEAD and the newest are kept. */
export const TIMELINE_LIMIT = 64;
export const TIMELINE_HEAD = 16;
/** At most one `output` event this often per task while output flows (ms). */
export const OUTPUT_EVENT_EVERY_MS = 10_000;
/** Most UTF-8 bytes kept of an event's detail (a status text comes from the daemon). */
export const EVENT_DETAIL_MAX_BYTES = 1024;

const TAIL = TIMELINE_LIMIT - TIMELINE_HEAD;

/** What the rest of the core tells the timeline: one call per thing that happened to a task. */
export interface TimelineEvents {
  /** A spawnTask was accepted (before it is dispatched or queued). */
  received(taskId: string): void;
  /** After a restart: an active task, held by `machineId` (null: queued). */
  restored(taskId: string, machineId: string | null): void;
  /** No daemon had a free slot: it waits with `ahead` tasks before it. */
  queued(taskId: string, ahead: number): void;
  dispatched(taskId: string, machineId: string): void;
  /** Commands that waited for the task were sent to its daemon. */
  commandsDelivered(taskId: string, count: number): void;
  statusReported(taskId: string, status: string): void;
  /** An output frame of `bytes` relayed for the task (the hot path: counted only). */
  output(taskId: string, bytes: number): void;
  /** Its daemon's connection ended: the task waits for the grace period. */
  away(taskId: string): void;
  /** Its machine came back within the grace period. */
  reattached(taskId: string, machineId: string): void;
  /** Its daemon is read more slowly: over `budget`. */
  throttled(taskId: string, budget: string): void;
  ended(taskId: string, status: EndedStatus): void;
}

/** An entry of a task's timeline as shown: a stored event, or one read from the task's row. */
export interface TimelineEntry extends Omit<TaskEvent, "n" | "kind"> {
  kind: TaskEventKind | "received" | "dispatched";
}

export interface TimelineView {
  task: TaskRecord;
  events: TimelineEntry[];
  /** Events left out by the bound, and the index in `events` after which they were. */
  omitted: number;
  omittedAfter: number | null;
  /** Output so far: live counts for an active task, the last stored ones for an ended task. */
  outputFrames: number;
  outputBytes: number;
}

/** What is kept in memory for a task that has not ended. */
interface Track {
  next: number;
  frames: number;
  bytes: number;
  /** When its last event was written: output is written again only after outputEveryMs. */
  lastAt: number;
  machineId: string | null;
}

export interface TimelineDeps {
  store: TaskEventStore;
  tasks: Pick<TaskStore, "get">;
  clock: Pick<Clock, "now">;
  /** Would a result for the server forwarded now wait in the outbox? (UpstreamOutbox.holding) */
  upstreamHolding: () => boolean;
  outputEveryMs?: number;
}

export class TaskTimeline implements TimelineEvents {
  private readonly tracks = new Map<string, Track>();
  private readonly outputEveryMs: number;

  constructor(private readonly deps: TimelineDeps) {
    this.outputEveryMs = deps.outputEveryMs ?? OUTPUT_EVENT_EVERY_MS;
  }

  received(taskId: string): void {
    const now = this.deps.clock.now();
    this.tracks.set(taskId, { next: 0, frames: 0, bytes: 0, lastAt: now, machineId: null });
  }

  /** Its timeline goes on after its last stored event. */
  restored(taskId: string, machineId: string | null): void {
    const last = this.deps.store.last(taskId);
    this.tracks.set(taskId, {
      next: last ? last.n + 1 : 0,
      frames: last?.outputFrames ?? 0,
      bytes: last?.outputBytes ?? 0,
      lastAt: this.deps.clock.now(),
      machineId,
    });
  }

  queued(taskId: string, ahead: number): void {
    this.record(taskId, "queued", `behind ${ahead} tasks`);
  }

  dispatched(taskId: string, machineId: string): void {
    const track = this.tracks.get(taskId);
    if (track) track.machineId = machineId;
  }

  commandsDelivered(taskId: string, count: number): void {
    this.record(taskId, "commandsDelivered", `${count} ${count === 1 ? "command" : "commands"}`);
  }

  statusReported(taskId: string, status: string): void {
    this.record(taskId, "statusReported", status);
  }

  output(taskId: string, bytes: number): void {
    const track = this.tracks.get(taskId);
    if (!track) return;
    track.frames += 1;
    track.bytes += bytes;
    if (this.deps.clock.now() - track.lastAt >= this.outputEveryMs)
      this.write(taskId, track, "output", null, null);
  }

  away(taskId: string): void {
    this.record(taskId, "away", null);
  }

  reattached(taskId: string, machineId: string): void {
    const track = this.tracks.get(taskId);
    if (track) track.machineId = machineId;
    this.record(taskId, "reattached", null);
  }

  throttled(taskId: string, budget: string): void {
    this.record(taskId, "throttled", `over ${budget}`);
  }

  /** Its last event: the final counts, and where the result went (its error is the task's). */
  ended(taskId: string, status: EndedStatus): void {
    const track = this.tracks.get(taskId);
    if (!track) return;
    this.tracks.delete(taskId);
    this.write(taskId, track, status, null, this.deps.upstreamHolding() ? "held" : "sent");
  }

  private record(taskId: string, kind: TaskEventKind, detail: string | null): void {
    const track = this.tracks.get(taskId);
    if (track) this.write(taskId, track, kind, detail, null);
  }

  private write(
    taskId: string,
    track: Track,
    kind: TaskEventKind,
    detail: string | null,
    upstream: UpstreamDisposition | null,
  ): void {
    const at = this.deps.clock.now();
    const n = track.next++;
    const event: TaskEvent = {
      n,
      at,
      kind,
      machineId: track.machineId,
      detail: boundNullable(detail, EVENT_DETAIL_MAX_BYTES),
      upstream,
      outputFrames: track.frames,
      outputBytes: track.bytes,
    };
    // Past the limit, the oldest event after the first TIMELINE_HEAD goes.
    this.deps.store.append(taskId, event, n >= TIMELINE_LIMIT ? n - TAIL : null);
    track.lastAt = at;
  }

  /** A task's timeline, or null for a task the relay does not know. */
  view(taskId: string): TimelineView | null {
    const task = this.deps.tasks.get(taskId);
    if (!task) return null;
    const stored = this.deps.store.list(taskId);
    const events = entries(task, stored);
    const lastN = stored.at(-1)?.n ?? -1;
    const omitted = lastN + 1 - stored.length;
    const track = this.tracks.get(taskId);
    const last = stored.at(-1);
    // The index in `events` of the last head event: received, dispatched and
    // any queued event come first, then the stored ones in order.
    const headEnd = events.length - (stored.length - TIMELINE_HEAD) - 1;
    return {
      task,
      events,
      omitted,
      omittedAfter: omitted > 0 ? headEnd : null,
      outputFrames: track?.frames ?? last?.outputFrames ?? 0,
      outputBytes: track?.bytes ?? last?.outputBytes ?? 0,
    };
  }
}

/** Reception and dispatch from the task's row, around the stored events in their order. */
function entries(task: TaskRecord, stored: readonly TaskEvent[]): TimelineEntry[] {
  const shown = (e: TaskEvent): TimelineEntry => ({
    at: e.at,
    kind: e.kind,
    machineId: e.machineId,
    // An end's error is the task's (kept once, in its row).
    detail: e.kind === task.status ? task.error : e.detail,
    upstream: e.upstream,
    outputFrames: e.outputFrames,
    outputBytes: e.outputBytes,
  });
  const none = { upstream: null, outputFrames: 0, outputBytes: 0 };
  const out: TimelineEntry[] = [
    {
      at: task.receivedAt,
      kind: "received",
      machineId: null,
      detail: `attempt ${task.attempts}`,
      ...none,
    },
  ];
  let i = 0;
  // A task waits before it is dispatched: its queued event comes first.
  while (i < stored.length && stored[i]?.kind === "queued")
    out.push(shown(stored[i++] as TaskEvent));
  if (task.dispatchedAt !== null) {
    out.push({
      at: task.dispatchedAt,
      kind: "dispatched",
      machineId: task.machineId,
      detail: task.dispatchedTo === null ? null : `daemon ${task.dispatchedTo}`,
      ...none,
    });
  }
  for (; i < stored.length; i++) out.push(shown(stored[i] as TaskEvent));
  return out;
}
