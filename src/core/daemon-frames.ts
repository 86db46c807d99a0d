/**
 * What a frame from an authenticated daemon does (docs/protocol.md "Daemon
 * to relay"): heartbeats go to reconciliation, capacity to the registry,
 * task frames are forwarded to the server only from the daemon that holds
 * the task (notYourTask otherwise), anything else is forwarded as it is.
 */
import { encodeError } from "../protocol/encode.ts";
import { HEARTBEAT_EXTRA_IDS } from "../protocol/messages.ts";
import type { DaemonFrame } from "../protocol/parse.ts";
import type { Daemon } from "./daemon.ts";
import type { DaemonLiveness } from "./daemon-liveness.ts";
import type { DaemonRegistry } from "./daemon-registry.ts";
import type { DaemonConnection } from "./ports.ts";
import type { TaskBook } from "./task-book.ts";
import type { TimelineEvents } from "./task-timeline.ts";

export interface DaemonFrameDeps {
  readonly registry: DaemonRegistry;
  readonly tasks: TaskBook;
  readonly liveness: DaemonLiveness;
  readonly timeline: Pick<TimelineEvents, "output">;
  /** Sends to a daemon once the writes before are committed. */
  reply(conn: DaemonConnection, text: string): void;
  /** To the server, counted once for /metrics (`bytes`: its UTF-8 length, when already known). */
  forwardUp(type: string, text: string, critical: boolean, bytes?: number): void;
  /** The sum of capacities may have changed. */
  capacityChanged(): void;
}

export class DaemonFrames {
  constructor(private readonly deps: DaemonFrameDeps) {}

  /** A parsed frame from an authenticated daemon (its `text` is forwarded as it came). */
  handle(daemon: Daemon, frame: DaemonFrame, text: string): void {
    switch (frame.kind) {
      case "authenticate":
        this.deps.reply(daemon.conn, encodeError("badMessage", "already authenticated"));
        return;
      case "heartbeat":
        this.heartbeat(daemon, frame.activeTasks, frame.more === true);
        return;
      case "capacityUpdate":
        this.deps.registry.setCapacity(daemon, frame.capacity);
        this.deps.capacityChanged();
        this.deps.tasks.dispatchQueued();
        return;
      case "other":
        this.deps.forwardUp(frame.type, text, false);
        return;
    }
    if (!this.deps.registry.holds(daemon.machineId, frame.taskId)) {
      this.deps.reply(
        daemon.conn,
        encodeError("notYourTask", `task ${frame.taskId} is not dispatched to this daemon`),
      );
      return;
    }
    if (frame.kind === "taskComplete") {
      // Forward first so that the server hears of the completion before any dispatch it frees.
      this.deps.forwardUp(frame.kind, text, true);
      this.deps.tasks.complete(frame.taskId, frame.success, frame.error);
    } else if (frame.kind === "taskStatusChange") {
      this.deps.tasks.reportStatus(frame.taskId, frame.newStatus);
      this.deps.forwardUp(frame.kind, text, true);
    } else {
      // Counted in memory, never a row per frame (task-timeline.ts); the count serves both.
      const bytes = Buffer.byteLength(text);
      this.deps.timeline.output(frame.taskId, bytes);
      this.deps.forwardUp(frame.type, text, false, bytes);
    }
  }

  /**
   * A heartbeat, or a part of one (`more`: the rest follows, relay-to-relay).
   * A daemon runs at most its capacity: a listing far longer than that, or
   * than what it holds, is abnormal and does not count (child relays list
   * their queue too, and are exempt).
   */
  private heartbeat(daemon: Daemon, listed: readonly string[], more: boolean): void {
    const bound = Math.max(daemon.capacity, daemon.holds.size) + HEARTBEAT_EXTRA_IDS;
    if (daemon.role === "daemon" && listed.length > bound) {
      this.deps.reply(
        daemon.conn,
        encodeError(
          "badMessage",
          `invalid field "activeTasks": ${listed.length} ids, over the limit of ${bound} (capacity or tasks held, plus ${HEARTBEAT_EXTRA_IDS})`,
        ),
      );
      return;
    }
    if (!more) this.deps.liveness.heartbeat(daemon);
    this.deps.tasks.heartbeat(daemon, listed, more);
  }
}
