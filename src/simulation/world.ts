/**
 * The simulated world around one relay: the clock, the server, the daemons,
 * the sockets between them, and the relay process itself (rebuilt after a
 * crash). The observer (observer.ts) watches what crosses the sockets; the
 * driver (driver.ts) decides what happens when.
 */
import { join } from "node:path";
import { ManualClock } from "../core/manual-clock.ts";
import { Core, randomSettings, type SimSettings } from "./core.ts";
import { type DaemonConnHooks, SimDaemonConn } from "./fake-sockets.ts";
import { FaultPlan } from "./faults.ts";
import {
  everyAttemptOneOutcome,
  type Fail,
  noIdleSlotWhileQueued,
  statusMatchesStore,
  taskHeldByOneDaemon,
} from "./invariants.ts";
import { FrameLedger } from "./ledger.ts";
import { RelayModel } from "./model.ts";
import { Observer, simOf } from "./observer.ts";
import { Prng } from "./prng.ts";
import type { Plant } from "./probe.ts";
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
  /** Everyone the driver still has to tick: the pool plus extras not yet gone for good. */
  private everyone: SimDaemon[] = [];
  core: Core;
  /** Open daemon connections of the live relay process. */
  readonly conns = new Set<SimDaemonConn>();
  readonly observer = new Observer(this);
  /** The relay changed a task since its state was last compared with the database. */
  tasksChanged = true;
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
    this.settings = randomSettings(this.prng);
    this.dbPath = join(opts.dir, `seed-${opts.seed}.db`);
    this.server = new SimServer(this.prng.fork(5), {
      spawnSent: (taskId, spawnId) => this.model.spawnSent(taskId, spawnId),
      received: (text) => this.observer.upstreamReceived(text),
      trace: (event) => this.trace.add(event),
    });
    const count = this.prng.int(2, 6);
    for (let i = 1; i <= count; i++) this.daemons.push(this.newDaemon(`m${i}`));
    this.core = this.boot();
  }

  newDaemon(machineId: string): SimDaemon {
    const daemon = new SimDaemon(machineId, this.daemonEnv);
    this.byMachine.set(machineId, daemon);
    this.everyone.push(daemon);
    return daemon;
  }

  daemon(machineId: string): SimDaemon | undefined {
    return this.byMachine.get(machineId);
  }

  /** The pool, strangers and finishers. */
  allDaemons(): SimDaemon[] {
    // Strangers pile up over a run; once gone with nothing to read they need no ticks.
    if (this.everyone.length > this.daemons.length + 8)
      this.everyone = this.everyone.filter((d) => this.daemons.includes(d) || !d.done);
    return this.everyone;
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
      hooks: this.observer.probeHooks,
      plant: this.opts.plant,
      transport: this.server.transport,
      trace: this.trace,
      onBug: (err) => this.fail("noWriteBug", `a write failed as a bug: ${String(err)}`),
      serverFrameRead: (text) => this.observer.serverFrameRead(text),
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
    this.observer.crashed();
    this.core = this.boot();
    this.tasksChanged = true;
  }

  // ---- daemon sockets --------------------------------------------------------

  private readonly connHooks: DaemonConnHooks = {
    sent: (conn, text) => this.observer.sentToDaemon(conn, text),
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
      this.observer.opened(conn);
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
    // Both sides change only through the task store's writes: nothing new, nothing to compare.
    if (this.tasksChanged && !this.core.flushDue && this.core.batch.status.ok) {
      statusMatchesStore(relay, this.core.stores, this.fail);
      this.tasksChanged = false;
    }
  }

  finalChecks(): void {
    this.tasksChanged = true;
    this.checkStep();
    this.ledger.dropped += this.core.outbox.counters.droppedFrames;
    everyAttemptOneOutcome(this.model, this.fail);
    this.ledger.checkAllArrived();
  }
}
