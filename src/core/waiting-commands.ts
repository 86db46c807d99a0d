/**
 * Control commands waiting for their task to reach a daemon (docs/protocol.md
 * "Task lifecycle"): a command for a queued task, or for one whose daemon is
 * away, waits here, in arrival order, with a copy in the store; it is
 * delivered right after the spawnTask, or when the daemon comes back.
 * ("Waiting" is about commands; which daemon holds a task is the registry's.)
 */
import type { Daemon } from "./daemon.ts";
import type { SendResult, TaskStore } from "./ports.ts";

/** A control command waiting for its task to reach a daemon; `seq` is its arrival order. */
interface WaitingCommand {
  readonly seq: number;
  readonly frame: string;
}

/** One task's commands: those waiting, and the arrival number of the next. */
interface TaskCommands {
  waiting: WaitingCommand[];
  next: number;
}

export type SendToDaemon = (
  daemon: Daemon,
  frame: string,
  then: (result: SendResult) => void,
) => void;

export class WaitingCommands {
  private readonly byTask = new Map<string, TaskCommands>();

  constructor(
    private readonly store: Pick<TaskStore, "holdCommand" | "dropHeldCommands" | "heldCommands">,
    /** Sends after the writes behind it are committed (TaskBook.sendTo). */
    private readonly send: SendToDaemon,
  ) {}

  /** A task was spawned: no command yet. */
  started(taskId: string): void {
    this.byTask.set(taskId, { waiting: [], next: 0 });
  }

  /** After a restart: the commands the store kept for the task wait again. */
  restore(taskId: string): void {
    const waiting = this.store.heldCommands(taskId).map((frame, seq) => ({ seq, frame }));
    this.byTask.set(taskId, { waiting, next: waiting.length });
  }

  /** A command arrived: sent to `daemon` (its task's holder) unless others wait before it. */
  route(taskId: string, frame: string, daemon: Daemon | undefined): void {
    const cmds = this.byTask.get(taskId);
    if (!cmds) return;
    const command = { seq: cmds.next++, frame };
    if (daemon && cmds.waiting.length === 0) this.sendOne(daemon, taskId, cmds, command);
    else this.wait(taskId, cmds, command);
  }

  /** The task reached `daemon` (dispatched, or reattached): its waiting commands go, in order; how many. */
  deliver(daemon: Daemon, taskId: string): number {
    const cmds = this.byTask.get(taskId);
    if (!cmds || cmds.waiting.length === 0) return 0;
    const commands = cmds.waiting;
    cmds.waiting = [];
    this.store.dropHeldCommands(taskId);
    // Dropped means the socket is closing: each waits again for the reattach, in order.
    for (const command of commands) this.sendOne(daemon, taskId, cmds, command);
    return commands.length;
  }

  /** The task ended: its waiting commands are dropped. */
  ended(taskId: string): void {
    const cmds = this.byTask.get(taskId);
    this.byTask.delete(taskId);
    if (cmds && cmds.waiting.length > 0) this.store.dropHeldCommands(taskId);
  }

  /** Sends a command; dropped (the socket is closing), it waits again, in its place. */
  private sendOne(daemon: Daemon, taskId: string, cmds: TaskCommands, command: WaitingCommand) {
    this.send(daemon, command.frame, (result) => {
      if (result === "dropped") this.wait(taskId, cmds, command);
    });
  }

  /**
   * Keeps a command for when the task reaches a daemon, in arrival order: a
   * command whose send was dropped (the socket closed while it waited for a
   * commit) goes back ahead of any that arrived after it and waited meanwhile.
   */
  private wait(taskId: string, cmds: TaskCommands, command: WaitingCommand): void {
    // The task ended (or a new attempt of it began) while the send waited.
    if (this.byTask.get(taskId) !== cmds) return;
    const at = cmds.waiting.findIndex((c) => c.seq > command.seq);
    if (at < 0) {
      this.store.holdCommand(taskId, command.frame);
      cmds.waiting.push(command);
      return;
    }
    cmds.waiting.splice(at, 0, command);
    // Rare (a dropped send): the store keeps arrival order by rewriting the task's list.
    this.store.dropHeldCommands(taskId);
    for (const c of cmds.waiting) this.store.holdCommand(taskId, c.frame);
  }
}
