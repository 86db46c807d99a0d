/**
 * The world's eyes: it sees every frame that crosses a socket and every
 * decision the relay makes on its task store, keeps what it saw per
 * connection, and calls the invariants at the moment each promise is about.
 */
import type { Daemon } from "../core/daemon.ts";
import { RECONCILE_SETTLE_MS } from "../core/reconciliation.ts";
import type { SimDaemonConn } from "./fake-sockets.ts";
import {
  type ConnWatch,
  commandsInOrder,
  dispatchPicksLeastLoaded,
  dispatchWithinCapacity,
  heldCommandsFollowSpawn,
  newWatch,
  noSpuriousLoss,
  noStaleCharge,
  outcomeArrived,
  spawnDeliveredOnce,
  spawnSentAfterCommit,
} from "./invariants.ts";
import { tagOf } from "./model.ts";
import type { ProbeHooks } from "./probe.ts";
import type { World } from "./world.ts";

export const simOf = (text: string): string | null => {
  const at = text.indexOf('"sim":"');
  return at < 0 ? null : text.slice(at + 7, text.indexOf('"', at + 7));
};
const taskIdOf = (text: string): string | null =>
  (JSON.parse(text) as { taskId?: string }).taskId ?? null;

export class Observer {
  private readonly watches = new Map<string, ConnWatch>();
  private readonly lastCmd = new Map<string, { cmdId: number; epoch: number }>();
  /** The daemon frame being handed to the relay right now (for checks made during it). */
  private delivering: { conn: SimDaemonConn; heartbeat: boolean } | null = null;
  private readonly dispatchedNow = new Set<string>();

  constructor(private readonly w: World) {}

  opened(conn: SimDaemonConn): void {
    this.watches.set(conn.id, newWatch());
  }

  /** The relay process died: what it knew of its connections goes with it. */
  crashed(): void {
    this.watches.clear();
  }

  // ---- what the relay decides (through the store probe) ---------------------

  readonly probeHooks: ProbeHooks = {
    changed: () => {
      this.w.tasksChanged = true;
    },
    dispatched: (attempt, machineId) => {
      const relay = this.w.core.relay;
      dispatchWithinCapacity(relay, machineId, this.w.fail);
      dispatchPicksLeastLoaded(relay, machineId, this.w.fail);
      attempt.afterSpawn = {
        cmds: attempt.heldWhilePending.map((c) => c.cmdId),
        relaxed:
          attempt.heldUncertain ||
          attempt.heldWhilePending.some((c) => c.epoch < this.w.model.epoch),
      };
      attempt.heldWhilePending = [];
      attempt.heldUncertain = false;
      this.dispatchedNow.add(attempt.taskId);
      // A new attempt of a task this connection had before: its count starts when this spawn arrives.
      const connId = relay.registry.byMachineId(machineId)?.conn.id;
      const watch = connId === undefined ? undefined : this.watches.get(connId);
      watch?.spawned.delete(attempt.taskId);
      watch?.countable.delete(attempt.taskId);
      watch?.inherited.delete(attempt.taskId);
      watch?.misses.delete(attempt.taskId);
    },
    ended: (attempt, status) => {
      const d = this.delivering;
      if (!this.w.opts.strict || status !== "lost" || !d?.heartbeat) return;
      if (attempt.liveMachine !== d.conn.machineId) return;
      if (this.watches.get(d.conn.id)?.inherited.has(attempt.taskId)) return;
      const run = this.w.daemon(d.conn.machineId)?.running.get(attempt.taskId);
      noSpuriousLoss(attempt, d.conn.machineId, run !== undefined && !run.forgotten, this.w.fail);
    },
  };

  /** Commands the relay reads for a queued task must follow its spawnTask. */
  serverFrameRead(text: string): void {
    const cmdId = tagOf(text, "cmdId");
    if (cmdId === null || text.startsWith('{"type":"interruptTask"')) return;
    const attempt = this.w.model.liveAttempt(taskIdOf(text) ?? "");
    if (attempt?.live === "pending")
      attempt.heldWhilePending.push({ cmdId, epoch: this.w.model.epoch });
  }

  /** The relay reads one frame from a daemon socket, if it would now. */
  readFrame(conn: SimDaemonConn): boolean {
    const text = conn.nextReadable();
    if (text === undefined) return false;
    const relay = this.w.core.relay;
    const before = relay.registry.get(conn.id);
    const sim = simOf(text);
    if (sim !== null) {
      const taskId = taskIdOf(text);
      const held =
        before !== undefined && (taskId === null || relay.registry.holds(conn.machineId, taskId));
      const attempt = taskId === null ? null : (this.w.model.liveAttempt(taskId)?.spawnId ?? null);
      this.w.ledger.read(sim, held, attempt, this.w.trace.step);
    }
    this.w.trace.add(`${conn.machineId}/${conn.id} → relay ${text.slice(0, 90)}`);
    const listed =
      before && text.startsWith('{"type":"heartbeat"')
        ? new Set((JSON.parse(text) as { activeTasks: string[] }).activeTasks)
        : null;
    this.delivering = { conn, heartbeat: listed !== null };
    this.dispatchedNow.clear();
    relay.daemonMessage(conn, text);
    this.delivering = null;
    const after = relay.registry.get(conn.id);
    const watch = this.watches.get(conn.id);
    if (!after || !watch) return true;
    if (!before)
      watch.inherited = new Set([...after.holds].filter((t) => !this.dispatchedNow.has(t)));
    if (listed)
      noStaleCharge(watch, after.holds, listed, conn.machineId, this.settled(after), this.w.fail);
    return true;
  }

  /** Read without a pause for RECONCILE_SETTLE_MS: what was waiting in the socket is read. */
  private settled(daemon: Daemon): boolean {
    return this.w.core.relay.liveness.readSteadilyFor(daemon, RECONCILE_SETTLE_MS);
  }

  sentToDaemon(conn: SimDaemonConn, text: string): void {
    this.w.trace.add(`relay → ${conn.machineId}/${conn.id} ${text.slice(0, 90)}`);
    const watch = this.watches.get(conn.id);
    if (!watch) return;
    heldCommandsFollowSpawn(watch, text, this.w.fail);
    if (text.startsWith('{"type":"spawnTask"')) {
      const spawnId = tagOf(text, "spawnId") ?? -1;
      const attempt = this.w.model.attempts.get(spawnId);
      if (!attempt) {
        this.w.fail("spawnDeliveredOnce", `unknown spawn ${text}`);
        return;
      }
      spawnDeliveredOnce(attempt, conn.machineId, this.w.fail);
      spawnSentAfterCommit(attempt, conn.machineId, this.w.fail);
      watch.spawned.add(attempt.taskId);
      // A new attempt starts its own count.
      watch.countable.delete(attempt.taskId);
      const daemon = this.w.core.relay.registry.get(conn.id);
      if (daemon && this.settled(daemon)) watch.countable.add(attempt.taskId);
      const after = attempt.afterSpawn;
      watch.expect = after?.cmds.length
        ? { spawnId, cmds: [...after.cmds], relaxed: after.relaxed }
        : null;
      return;
    }
    const cmdId = tagOf(text, "cmdId");
    if (cmdId === null) return;
    const taskId = taskIdOf(text) ?? "";
    commandsInOrder(
      this.lastCmd,
      `${conn.machineId}/${taskId}`,
      cmdId,
      this.w.model.epoch,
      this.w.fail,
    );
    if (this.w.model.latestLive(taskId)?.liveMachine !== conn.machineId)
      this.w.fail(
        "commandsInOrder",
        `command ${cmdId} for ${taskId} reached ${conn.machineId}, not its holder`,
      );
  }

  // ---- the server side ---------------------------------------------------------

  upstreamReceived(text: string): void {
    this.w.trace.add(`relay → server ${text.slice(0, 90)}`);
    const sim = simOf(text);
    if (sim !== null) {
      const frame = this.w.ledger.arrived(sim, this.w.model.epoch);
      if (frame?.type === "taskComplete")
        outcomeArrived(this.w.model, text, frame.attempt, this.w.fail);
    } else if (text.startsWith('{"type":"taskComplete"')) {
      outcomeArrived(this.w.model, text, null, this.w.fail);
    } else this.w.fail("upstreamFramesKnown", `the relay sent the server ${text.slice(0, 90)}`);
  }
}
