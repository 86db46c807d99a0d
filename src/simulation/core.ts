/**
 * One relay process, wired as src/relay-server.ts wires it (write batch,
 * stores, upstream, relay), but on the simulated clock, sockets
 * and a fault-injecting transaction driver, with the batch flushed by the
 * world at the end of each step instead of by setImmediate. A crash drops the
 * whole object without flushing; a restart builds a new one on the same file.
 */
import type { Database } from "bun:sqlite";
import { createKeyCheck } from "../core/key-check.ts";
import { Listeners } from "../core/listeners.ts";
import type { ManualClock } from "../core/manual-clock.ts";
import type { EventLog, StorageStatus, Stores } from "../core/ports.ts";
import { Relay } from "../core/relay.ts";
import { Upstream, type UpstreamEvent } from "../core/upstream.ts";
import type { UpstreamLink } from "../core/upstream-link.ts";
import type { UpstreamOutbox } from "../core/upstream-outbox.ts";
import type { UpstreamTransport } from "../core/upstream-socket.ts";
import { createStores, openDatabase } from "../store/database.ts";
import { createMemoryStores } from "../store/memory-stores.ts";
import { createWriteBatch, sqliteTransactions, type WriteBatch } from "../store/write-batch.ts";
import { type FaultPlan, faultyTransactions, memoryTransactions } from "./faults.ts";
import type { RelayModel } from "./model.ts";
import type { Prng } from "./prng.ts";
import { type Plant, type ProbeHooks, probeBatch, probeTaskStore } from "./probe.ts";
import { ScopedClock } from "./scoped-clock.ts";
import type { StoreKind, Trace } from "./trace.ts";

export const RELAY_KEY = "relay-key";
export const DAEMON_KEY = "daemon-key";

export interface SimSettings {
  graceMs: number;
  authTimeoutMs: number;
  daemonTimeoutMs: number;
  historyKeep: number;
  daemonRate: number;
  daemonBurst: number;
  maxUnauthenticated: number;
  outboxMaxBytes: number;
  heartbeatMs: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  connectTimeoutMs: number;
  logKeep: number;
}

/** Timeouts and limits drawn per seed, small enough that every path runs in a short run. */
export function randomSettings(prng: Prng): SimSettings {
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

export interface CoreEnv {
  clock: ManualClock;
  settings: SimSettings;
  kind: StoreKind;
  /** SQLite file (sqlite mode). */
  dbPath: string;
  /** Jitter for the link's backoff. */
  prng: Prng;
  faults: FaultPlan;
  model: RelayModel;
  hooks: ProbeHooks;
  plant: Plant | null;
  transport: UpstreamTransport;
  trace: Trace;
  /** A write failed for a reason other than storage: a bug in an operation. */
  onBug(err: unknown): void;
  /** The link hands the relay a server frame (after the handshake). */
  serverFrameRead(text: string): void;
  newId(): string;
}

export class Core {
  readonly clock: ScopedClock;
  readonly batch: WriteBatch;
  readonly stores: Stores;
  readonly relay: Relay;
  readonly link: UpstreamLink;
  readonly outbox: UpstreamOutbox;
  /** The batch asked for a flush at the end of the turn. */
  flushDue = false;
  private readonly sqlite: Database | null;

  constructor(env: CoreEnv) {
    const { settings: s, trace } = env;
    this.clock = new ScopedClock(env.clock);
    const clock = this.clock;
    const database = env.kind === "sqlite" ? openDatabase(env.dbPath) : null;
    this.sqlite = database?.sqlite ?? null;
    const driver = database
      ? faultyTransactions(sqliteTransactions(database.sqlite), env.faults)
      : memoryTransactions(env.faults);
    const storage = new Listeners<StorageStatus>();
    this.batch = createWriteBatch(driver, {
      clock,
      schedule: () => {
        this.flushDue = true;
      },
      onStatusChange: (status: StorageStatus) => {
        trace.add(status.ok ? "storage healthy" : `storage failing (${status.code})`);
        storage.tell(status);
      },
      onBug: env.onBug,
    });
    // Memory stores cannot undo an applied write, so only SQLite gets mid-transaction faults.
    const batch = probeBatch(this.batch, env.faults, database !== null);
    const base = database
      ? createStores(database.db, database.sqlite, { logKeep: s.logKeep, batch })
      : createMemoryStores(batch);
    const stores: Stores = {
      ...base,
      tasks: probeTaskStore(base.tasks, batch, env.model, env.hooks, env.plant),
    };
    this.stores = stores;
    const log: EventLog = {
      log: (level, event, fields) => {
        if (level !== "debug") trace.add(`relay ${event} ${fields ? JSON.stringify(fields) : ""}`);
      },
      connection: (event, details) => {
        trace.add(`relay ${event}: ${details}`);
        stores.connectionLog.insert(event, clock.now(), details);
      },
    };
    const machineId = stores.meta.get("machineId") ?? "makima-relay-sim";
    if (stores.meta.get("machineId") === null) stores.meta.set("machineId", machineId);
    const upstream = new Upstream(
      {
        url: "ws://server.sim/ws/daemon",
        unconfiguredReason: null,
        baseMs: s.reconnectBaseMs,
        maxMs: s.reconnectMaxMs,
        maxReconnects: null,
        connectTimeoutMs: s.connectTimeoutMs,
        heartbeatMs: s.heartbeatMs,
        identity: { apiKey: RELAY_KEY, machineId, hostname: "relay-sim" },
        capacity: 0,
        outboxMaxBytes: s.outboxMaxBytes,
      },
      {
        transport: env.transport,
        outboxStore: stores.outbox,
        afterCommit: stores.afterCommit,
        clock,
        jitter: () => env.prng.next(),
        log,
        reportBug: (_where, err) => env.onBug(err),
      },
    );
    this.link = upstream.link;
    this.outbox = upstream.outbox;
    const relay = new Relay(
      {
        authTimeoutMs: s.authTimeoutMs,
        daemonTimeoutMs: s.daemonTimeoutMs,
        graceMs: s.graceMs,
        historyKeep: s.historyKeep,
        daemonRate: s.daemonRate,
        daemonBurst: s.daemonBurst,
        maxUnauthenticated: s.maxUnauthenticated,
        acceptKey: createKeyCheck([RELAY_KEY, DAEMON_KEY]),
        newId: env.newId,
      },
      stores,
      upstream,
      clock,
      log,
    );
    this.relay = relay;
    upstream.listen({
      upstreamEvent: (event) => {
        traceUpstream(trace, event);
        if (event.kind === "frame") env.serverFrameRead(event.text);
        relay.upstreamEvent(event);
      },
      heartbeatTasks: () => relay.heartbeatTasks(),
    });
    storage.add((status) => relay.storageChanged(status));
    storage.add((status) => upstream.setPaused(!status.ok));
    relay.start();
    upstream.start();
  }

  /** Commits what is queued if the batch asked for it. True when nothing is left uncommitted. */
  flush(): boolean {
    if (this.flushDue) {
      this.flushDue = false;
      return this.batch.flush();
    }
    return this.batch.status.ok;
  }

  /** The process dies: no flush, no goodbye; its timers and its database handle go with it. */
  kill(): void {
    this.clock.kill();
    this.batch.stop();
    // Without a checkpoint or a COMMIT: what was committed is in the file (WAL), nothing else.
    this.sqlite?.close(true);
  }
}

/** The outbox's pressure changes, as the trace tells them. */
function traceUpstream(trace: Trace, event: UpstreamEvent): void {
  if (event.kind === "congested")
    trace.add(`outbox ${event.congested ? "congested" : "caught up"}`);
  if (event.kind === "outboxFull") trace.add(`outbox ${event.full ? "full" : "within its limit"}`);
}
