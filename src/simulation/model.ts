/**
 * The simulation's record of what the relay decided and what it committed,
 * kept from the calls it makes on its task store (see probe.ts), plus what the
 * simulated server received for each attempt. One attempt is one spawnTask the
 * server sent: every spawn frame carries a unique `spawnId`, so a re-spawn of
 * an ended task is a new attempt and a duplicate spawn is recognisable.
 */
import type { TaskStatus } from "../core/ports.ts";

export type Phase = "pending" | "dispatched" | Exclude<TaskStatus, "pending" | "dispatched">;

export interface Outcome {
  text: string;
  /** Crash count when it first arrived: a copy is allowed only after a later crash. */
  epoch: number;
  copies: number;
}

export interface Attempt {
  readonly spawnId: number;
  readonly taskId: string;
  /** What the relay holds in memory (its calls). */
  live: Phase | null;
  liveMachine: string | null;
  /** What the database holds (committed writes). */
  durable: Phase | null;
  durableMachine: string | null;
  /** Outcomes (taskComplete) the server received for this attempt. */
  outcomes: Outcome[];
  /** spawnTask frames written to daemon sockets for this attempt. */
  deliveries: number;
  /** Control commands the relay read while this attempt was queued (they must follow its spawn). */
  heldWhilePending: { cmdId: number; epoch: number }[];
  /**
   * Fixed at dispatch: the commands that must follow its spawnTask on the socket.
   * `relaxed` after a crash: only what was committed survived, so a prefix.
   */
  afterSpawn: { cmds: number[]; relaxed: boolean } | null;
  /**
   * Back to pending after a crash that undid an uncommitted dispatch: the
   * commands held for it are what the database kept, which this model does
   * not track, so the next spawn's commands are checked as a prefix only.
   */
  heldUncertain: boolean;
}

export const ACTIVE: ReadonlySet<Phase | null> = new Set<Phase | null>(["pending", "dispatched"]);

/** Reads the simulation's tag out of a frame (the relay forwards frames verbatim). */
export function tagOf(text: string, field: "spawnId" | "cmdId" | "n"): number | null {
  const at = text.indexOf(`"${field}":`);
  if (at < 0) return null;
  const value = Number.parseInt(text.slice(at + field.length + 3), 10);
  return Number.isFinite(value) ? value : null;
}

export class RelayModel {
  readonly attempts = new Map<number, Attempt>();
  /** taskId -> its latest attempt the relay started (in memory), ended or not. */
  private readonly live = new Map<string, Attempt>();
  /** taskId -> its latest attempt the database holds. */
  private readonly durable = new Map<string, Attempt>();
  /** taskId -> every attempt the server sent, oldest first. */
  readonly byTask = new Map<string, Attempt[]>();
  epoch = 0;

  constructor(private readonly fail: (invariant: string, message: string) => void) {}

  /** The server sent a spawnTask: a new attempt exists (the relay may never accept it). */
  spawnSent(taskId: string, spawnId: number): void {
    const attempt: Attempt = {
      spawnId,
      taskId,
      live: null,
      liveMachine: null,
      durable: null,
      durableMachine: null,
      outcomes: [],
      deliveries: 0,
      heldWhilePending: [],
      afterSpawn: null,
      heldUncertain: false,
    };
    this.attempts.set(spawnId, attempt);
    const list = this.byTask.get(taskId) ?? [];
    list.push(attempt);
    this.byTask.set(taskId, list);
  }

  /** The relay's current attempt of a task, if it holds one in memory. */
  liveAttempt(taskId: string): Attempt | undefined {
    const a = this.live.get(taskId);
    return a && ACTIVE.has(a.live) ? a : undefined;
  }

  latestLive(taskId: string): Attempt | undefined {
    return this.live.get(taskId);
  }

  durableAttempt(taskId: string): Attempt | undefined {
    return this.durable.get(taskId);
  }

  // ---- the relay's calls (in memory) --------------------------------------

  pendingCalled(taskId: string, spawnId: number): Attempt | undefined {
    const previous = this.liveAttempt(taskId);
    if (previous)
      this.fail(
        "oneAttemptAtATime",
        `task ${taskId} started attempt ${spawnId} while attempt ${previous.spawnId} is ${previous.live}`,
      );
    const attempt = this.attempts.get(spawnId);
    if (!attempt) {
      this.fail("knownSpawn", `the relay saved spawn ${spawnId} of ${taskId} that no server sent`);
      return undefined;
    }
    attempt.live = "pending";
    this.live.set(taskId, attempt);
    return attempt;
  }

  dispatchCalled(taskId: string, machineId: string): Attempt | undefined {
    const attempt = this.liveAttempt(taskId);
    if (!attempt) {
      this.fail("dispatchActive", `task ${taskId} dispatched to ${machineId} but it is not active`);
      return undefined;
    }
    attempt.live = "dispatched";
    attempt.liveMachine = machineId;
    return attempt;
  }

  endCalled(taskId: string, status: TaskStatus): Attempt | undefined {
    const attempt = this.liveAttempt(taskId);
    if (!attempt) {
      this.fail("endActive", `task ${taskId} ended (${status}) but it is not active`);
      return undefined;
    }
    attempt.live = status as Phase;
    return attempt;
  }

  // ---- committed (the writes above reached the database) -------------------

  pendingCommitted(attempt: Attempt): void {
    const previous = this.durable.get(attempt.taskId);
    if (previous && previous !== attempt && ACTIVE.has(previous.durable))
      this.fail(
        "oneAttemptAtATime",
        `attempt ${attempt.spawnId} of ${attempt.taskId} committed while ${previous.spawnId} is still ${previous.durable}`,
      );
    attempt.durable = "pending";
    this.durable.set(attempt.taskId, attempt);
  }

  dispatchCommitted(attempt: Attempt, machineId: string): void {
    attempt.durable = "dispatched";
    attempt.durableMachine = machineId;
  }

  endCommitted(attempt: Attempt, status: TaskStatus): void {
    attempt.durable = status as Phase;
  }

  /** The relay process died: what it held in memory is what the database holds. */
  crashed(): void {
    this.epoch += 1;
    this.live.clear();
    for (const [taskId, attempt] of this.durable) {
      if (attempt.durable === "pending" && attempt.live !== "pending") attempt.heldUncertain = true;
      attempt.live = attempt.durable;
      attempt.liveMachine = attempt.durableMachine;
      this.live.set(taskId, attempt);
    }
    for (const attempt of this.attempts.values()) {
      if (this.durable.get(attempt.taskId) !== attempt && ACTIVE.has(attempt.live)) {
        // Started in memory, never committed: gone with the process.
        attempt.live = null;
      }
    }
  }

  /** Attempts the relay accepted (committed), for the end-of-run accounting. */
  accepted(): Attempt[] {
    return [...this.attempts.values()].filter((a) => a.durable !== null);
  }
}
