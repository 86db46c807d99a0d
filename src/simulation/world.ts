/**
 * The simulated world around one relay: the clock, the server, the daemons,
 * the sockets between them, and the relay process itself (rebuilt after a
 * crash). It observes every frame that crosses a socket and calls the
 * invariants at the moment each promise is about; the driver (driver.ts)
 * decides what happens when.
 */
import { join } from "node:path";
import { ManualClock } from "../core/manual-clock.ts";
import { Core, type SimSettings } from "./core.ts";
import { type DaemonConnHooks, SimDaemonConn } from "./fake-sockets.ts";
import { FaultPlan } from "./faults.ts";
import {
  type ConnWatch,
  commandsInOrder,
  dispatchPicksLeastLoaded,
  dispatchWithinCapacity,
  everyAttemptOneOutcome,
  type Fail,
  heldCommandsFollowSpawn,
  newWatch,
  noIdleSlotWhileQueued,
  noSpuriousLoss,
  noStaleCharge,
  outcomeArrived,
  spawnDeliveredOnce,
  spawnSentAfterCommit,
  statusMatchesStore,
  taskHeldByOneDaemon,
} from "./invariants.ts";
import { FrameLedger } from "./ledger.ts";
import { RelayModel, tagOf } from "./model.ts";
import { Prng } from "./prng.ts";
import type { Plant, ProbeHooks } from "./probe.ts";
import { type DaemonEnv, SimDaemon } from "./sim-daemon.ts";
import { SimServer } from "./sim-server.ts";
import { type StoreKind, Trace, Verdict } from "./trace.ts";

export interface WorldOptions {
  seed: number;
  stores: StoreKind;
  plant: Plant | null;
  /** Directory for the SQLite file. */
  dir: string;
  /** Also check promises a known core issue breaks (see README in this folder). */
  strict: boolean;
}

const simOf = (text: string): string | null => {
  const at = text.indexOf('"sim":"');
  return at < 0 ? null : text.slice(at + 7, text.indexOf('"', at + 7));
};
const taskIdOf = (text: string): string | null =>
  (JSON.parse(text) as { taskId?: string }).taskId ?? null;

function settingsFor(prng: Prng): SimSettings {
  const rate = prng.pick([10, 25, 60, 200]) as number;
  return {
    graceMs: prng.int(3000, 10_000),
    authTimeoutMs: 2000,
    daemonTimeoutMs: prng.int(4000, 9000),
    historyKeep: prng.int(5, 200),
    daemonRate: rate,
    daemonBurst: rate * prng.int(1, 3),
    maxUnauthenticated: prng.int(2, 8),
    outboxMaxBytes: prng.pick([2500, 8000, 40_000, 1_000_000]) as number,
    heartbeatMs: prng.int(800, 3000),
    reconnectBaseMs: prng.int(50, 500),
    reconnectMaxMs: 4000,
    connectTimeoutMs: prng.int(500, 3000),
    logKeep: 100,
  };
}

export class World {
  readonly clock = new ManualClock();
  readonly prng: Prng;
  private readonly socketPrng: Prng;
  private readonly corePrng: Prng;
  readonly trace = new Trace();
  readonly verdict: Verdict;
  readonly fail: Fail;
  readonly model: RelayModel;
  readonly ledger: FrameLedger;
  readonly faults: FaultPlan;
  readonly settings: SimSettings;
  readonly server: SimServer;
  /** The pool the events pick from; strangers and finishers are extra. */
  readonly daemons: SimDaemon[] = [];
  private readonly byMachine = new Map<string, SimDaemon>();
  core: Core;
  /** Open daemon connections of the live relay process. */
  readonly conns = new Set<SimDaemonConn>();
  private readonly watches = new Map<string, ConnWatch>();
  private readonly lastCmd = new Map<string, { cmdId: number; epoch: number }>();
  /** The daemon frame being handed to the relay right now (for checks made during it). */
  private delivering: { conn: SimDaemonConn; heartbeat: boolean } | null = null;
  private readonly dispatchedNow = new Set<string>();
  crashes = 0;
  outageSteps = 0;
  private connSeq = 0;
  private idSeq = 0;
  private extras = 0;
  readonly dbPath: string;

  constructor(readonly opts: WorldOptions) {
    const root = new Prng(opts.seed);
    this.prng = root.fork(1);
    this.socketPrng = root.fork(2);
    this.corePrng = root.fork(3);
    this.faults = new FaultPlan(root.fork(4));
    this.verdict = new Verdict(opts.seed, opts.stores, this.trace);
    this.fail = (invariant, message) => this.verdict.fail(invariant, message);
    this.model = new RelayModel(this.fail);
    this.ledger = new FrameLedger(this.fail);
    this.settings = settingsFor(this.prng);
    this.dbPath = join(opts.dir, `seed-${opts.seed}.db`);
    this.server = new SimServer(this.prng.fork(5), {
      spawnSent: (taskId, spawnId) => this.model.spawnSent(taskId, spawnId),
      received: (text) => this.upstreamReceived(text),
      trace: (event) => this.trace.add(event),
    });
    const count = this.prng.int(2, 6);
    for (let i = 1; i <= count; i++) this.daemons.push(this.newDaemon(`m${i}`));
    this.core = this.boot();
  }

  newDaemon(machineId: string): SimDaemon {
    const daemon = new SimDaemon(machineId, this.daemonEnv);
    this.byMachine.set(machineId, daemon);
    return daemon;
  }

  /** The pool, strangers and finishers. */
  allDaemons(): SimDaemon[] {
    return [...this.byMachine.values()];
  }

  /** A daemon outside the pool (a stranger or a finisher for the quiet period). */
  extraDaemon(prefix: string): SimDaemon {
    return this.newDaemon(`${prefix}${++this.extras}`);
  }

  private boot(): Core {
    this.trace.add(`relay process starts (${this.opts.stores} stores)`);
    return new Core({
      clock: this.clock,
      settings: this.settings,
      kind: this.opts.stores,
      dbPath: this.dbPath,
      prng: this.corePrng,
      faults: this.faults,
      model: this.model,
      hooks: this.probeHooks,
      plant: this.opts.plant,
      transport: this.server.transport,
      trace: this.trace,
      onBug: (err) => this.fail("noWriteBug", `a write failed as a bug: ${String(err)}`),
      serverFrameRead: (text) => this.serverFrameRead(text),
      newId: () => `d${++this.idSeq}`,
    });
  }

  /** kill -9: no flush; the daemons and the server see their sockets drop; a new process starts. */
  crash(): void {
    this.trace.add("CRASH: the relay process is killed and restarted");
    this.ledger.dropped += this.core.outbox.counters.droppedFrames;
    this.core.kill();
    this.crashes += 1;
    this.ledger.crashed();
    this.model.crashed();
    this.server.relayDied();
    for (const conn of this.conns) {
      conn.end(1006, "relay crashed");
      const daemon = this.byMachine.get(conn.machineId);
      daemon?.lost(conn);
      if (daemon && this.daemons.includes(daemon))
        daemon.reconnectAt = this.clock.now() + this.prng.int(0, this.settings.graceMs);
    }
    this.conns.clear();
    this.watches.clear();
    this.core = this.boot();
  }

  // ---- what the relay decides (through the store probe) ---------------------

  private readonly probeHooks: ProbeHooks = {
    dispatched: (attempt, machineId) => {
      const relay = this.core.relay;
      dispatchWithinCapacity(relay, machineId, this.fail);
      dispatchPicksLeastLoaded(relay, machineId, this.fail);
      attempt.afterSpawn = {
        cmds: attempt.heldWhilePending.map((c) => c.cmdId),
        relaxed: attempt.heldWhilePending.some((c) => c.epoch < this.model.epoch),
      };
      attempt.heldWhilePending = [];
      this.dispatchedNow.add(attempt.taskId);
      // A new attempt of a task this connection had before: its count starts when this spawn arrives.
      const connId = relay.registry.byMachineId(machineId)?.conn.id;
      const watch = connId === undefined ? undefined : this.watches.get(connId);
      watch?.spawned.delete(attempt.taskId);
      watch?.inherited.delete(attempt.taskId);
      watch?.misses.delete(attempt.taskId);
    },
    ended: (attempt, status) => {
      const d = this.delivering;
      if (!this.opts.strict || status !== "lost" || !d?.heartbeat) return;
      if (attempt.liveMachine !== d.conn.machineId) return;
      if (this.watches.get(d.conn.id)?.inherited.has(attempt.taskId)) return;
      const run = this.byMachine.get(d.conn.machineId)?.running.get(attempt.taskId);
      noSpuriousLoss(attempt, d.conn.machineId, run !== undefined && !run.forgotten, this.fail);
    },
  };

  /** Commands the relay reads for a queued task must follow its spawnTask. */
  private serverFrameRead(text: string): void {
    const cmdId = tagOf(text, "cmdId");
    if (cmdId === null || text.startsWith('{"type":"interruptTask"')) return;
    const attempt = this.model.liveAttempt(taskIdOf(text) ?? "");
    if (attempt?.live === "pending")
      attempt.heldWhilePending.push({ cmdId, epoch: this.model.epoch });
  }

  // ---- daemon sockets --------------------------------------------------------

  private readonly connHooks: DaemonConnHooks = {
    sent: (conn, text) => this.sentToDaemon(conn, text),
    closedByRelay: (conn, code, reason) => {
      this.trace.add(`relay closes ${conn.machineId}/${conn.id} ${code} ${reason}`);
      this.conns.delete(conn);
      this.core.relay.daemonClosed(conn, code, reason);
      const daemon = this.byMachine.get(conn.machineId);
      if (!daemon || conn !== daemon.conn) return;
      daemon.lost(conn);
      if (this.daemons.includes(daemon))
        daemon.reconnectAt = this.clock.now() + this.prng.int(100, 2 * this.settings.graceMs);
    },
    unread: (_conn, frames) => {
      for (const text of frames) {
        const sim = simOf(text);
        if (sim) this.ledger.unread(sim);
      }
    },
  };

  readonly daemonEnv: DaemonEnv = {
    now: () => this.clock.now(),
    open: (daemon) => {
      const relay = this.core.relay;
      if (relay.connectionRefusal() !== null) return null;
      const conn = new SimDaemonConn(
        `c${++this.connSeq}`,
        daemon.machineId,
        "10.0.0.1",
        this.connHooks,
        this.socketPrng,
      );
      conn.dropWhilePaused = this.opts.plant === "drop-paused-frames";
      this.conns.add(conn);
      this.watches.set(conn.id, newWatch());
      this.trace.add(`${daemon.machineId} opens ${conn.id}`);
      relay.daemonOpened(conn);
      return conn;
    },
    drop: (conn) => {
      this.trace.add(`${conn.machineId} drops ${conn.id}`);
      conn.end(1006, "daemon gone");
      this.conns.delete(conn);
      this.core.relay.daemonClosed(conn, 1006, "");
    },
    written: (meta) => this.ledger.written(meta),
    trace: (event) => this.trace.add(event),
  };

  /** The relay reads one frame from a daemon socket, if it would now. */
  readFrame(conn: SimDaemonConn): boolean {
    const text = conn.nextReadable();
    if (text === undefined) return false;
    const relay = this.core.relay;
    const before = relay.registry.get(conn.id);
    const sim = simOf(text);
    if (sim !== null) {
      const taskId = taskIdOf(text);
      const held =
        before !== undefined && (taskId === null || relay.tasks.isHeldBy(taskId, conn.machineId));
      const attempt = taskId === null ? null : (this.model.liveAttempt(taskId)?.spawnId ?? null);
      this.ledger.read(sim, held, attempt, this.trace.step);
    }
    this.trace.add(`${conn.machineId}/${conn.id} → relay ${text.slice(0, 90)}`);
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
      watch.inherited = new Set([...after.tasks].filter((t) => !this.dispatchedNow.has(t)));
    if (listed) noStaleCharge(watch, after.tasks, listed, conn.machineId, this.fail);
    return true;
  }

  private sentToDaemon(conn: SimDaemonConn, text: string): void {
    this.trace.add(`relay → ${conn.machineId}/${conn.id} ${text.slice(0, 90)}`);
    const watch = this.watches.get(conn.id);
    if (!watch) return;
    heldCommandsFollowSpawn(watch, text, this.fail);
    if (text.startsWith('{"type":"spawnTask"')) {
      const spawnId = tagOf(text, "spawnId") ?? -1;
      const attempt = this.model.attempts.get(spawnId);
      if (!attempt) {
        this.fail("spawnDeliveredOnce", `unknown spawn ${text}`);
        return;
      }
      spawnDeliveredOnce(attempt, conn.machineId, this.fail);
      spawnSentAfterCommit(attempt, conn.machineId, this.fail);
      watch.spawned.add(attempt.taskId);
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
      this.model.epoch,
      this.fail,
    );
    if (this.model.latestLive(taskId)?.liveMachine !== conn.machineId)
      this.fail(
        "commandsInOrder",
        `command ${cmdId} for ${taskId} reached ${conn.machineId}, not its holder`,
      );
  }

  // ---- the server side ---------------------------------------------------------

  private upstreamReceived(text: string): void {
    this.trace.add(`relay → server ${text.slice(0, 90)}`);
    const sim = simOf(text);
    if (sim !== null) {
      const frame = this.ledger.arrived(sim, this.model.epoch);
      if (frame?.type === "taskComplete")
        outcomeArrived(this.model, text, frame.attempt, this.fail);
    } else if (text.startsWith('{"type":"taskComplete"')) {
      outcomeArrived(this.model, text, null, this.fail);
    } else this.fail("upstreamFramesKnown", `the relay sent the server ${text.slice(0, 90)}`);
  }

  // ---- checks --------------------------------------------------------------------

  /** Commits what the batch holds, as the end of an event-loop turn does. */
  flush(): void {
    for (let i = 0; i < 8; i++) {
      if (this.core.flush()) this.ledger.committed();
      if (!this.core.flushDue) return;
    }
  }

  checkStep(): void {
    const relay = this.core.relay;
    taskHeldByOneDaemon(relay, this.model, this.fail);
    noIdleSlotWhileQueued(relay, this.fail);
    if (!this.core.flushDue && this.core.batch.status.ok)
      statusMatchesStore(relay, this.core.stores, this.fail);
  }

  finalChecks(): void {
    this.checkStep();
    this.ledger.dropped += this.core.outbox.counters.droppedFrames;
    everyAttemptOneOutcome(this.model, this.fail);
    this.ledger.checkAllArrived();
  }
}
