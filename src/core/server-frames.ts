/**
 * What a frame from the server does (docs/protocol.md "Server to relay"),
 * once the upstream link is authenticated: `spawnTask` goes to the task
 * book (queued or dispatched), a control command to the task's holder
 * (or waits with the task), anything else is broadcast to every daemon.
 * An unreadable frame is logged and dropped: it cannot be answered.
 */
import { parseServerFrame } from "../protocol/parse.ts";
import type { DaemonRegistry } from "./daemon-registry.ts";
import type { DaemonConnection, EventLog } from "./ports.ts";
import type { RelayStats } from "./stats.ts";
import type { TaskBook } from "./task-book.ts";

export interface ServerFrameDeps {
  readonly registry: Pick<DaemonRegistry, "all">;
  readonly tasks: Pick<TaskBook, "spawn" | "control">;
  readonly stats: Pick<RelayStats, "frameFromServer" | "relayedToDaemons">;
  readonly log: EventLog;
  /** Sends to a daemon once the writes before are committed. */
  reply(conn: DaemonConnection, text: string): void;
}

export class ServerFrames {
  constructor(private readonly deps: ServerFrameDeps) {}

  handle(text: string): void {
    const { stats, tasks } = this.deps;
    stats.frameFromServer(text.length);
    const parsed = parseServerFrame(text);
    if (!parsed.ok) {
      this.deps.log.connection(
        "error",
        `Unreadable frame from the server: ${parsed.error.message}`,
        "warn",
      );
      return;
    }
    const frame = parsed.value;
    if (frame.kind !== "authenticated") {
      stats.relayedToDaemons(frame.kind === "spawnTask" ? frame.kind : frame.type, text);
    }
    switch (frame.kind) {
      case "spawnTask":
        tasks.spawn(frame.taskId, frame.taskName, text);
        return;
      case "control":
        tasks.control(frame.type, frame.taskId, text);
        return;
      case "authenticated":
        return;
      case "other":
        for (const d of this.deps.registry.all()) this.deps.reply(d.conn, text);
    }
  }
}
