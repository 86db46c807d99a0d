/**
 * A Relay on a manual clock with two pools' keys, for the admission tests:
 * sockets from chosen addresses, authenticate frames with a chosen key.
 */
import { createKeyCheck } from "../../src/core/key-check.ts";
import { ManualClock } from "../../src/core/manual-clock.ts";
import type { EventLog, Stores } from "../../src/core/ports.ts";
import { Relay, type RelayOptions } from "../../src/core/relay.ts";
import { createStores, openDatabase } from "../../src/store/database.ts";
import { createMemoryStores, FakeConnection, FakeLog, type Json } from "./fakes.ts";

export const POOL_A = "pool-a-key-0123456789";
export const POOL_B = "pool-b-key-9876543210";
export const AUTH_TIMEOUT = 10_000;
export const GRACE = 60_000;

/** Both store implementations must give the same admission decisions. */
export const STORE_KINDS: [string, () => Stores][] = [
  ["memory stores", () => createMemoryStores()],
  [
    "sqlite :memory: stores",
    () => {
      const db = openDatabase(":memory:");
      return createStores(db.db, db.sqlite, { logKeep: 1000 });
    },
  ],
];

export function admissionHarness(
  stores: Stores = createMemoryStores(),
  over: Partial<RelayOptions> = {},
  clock = new ManualClock(),
  /** Where the relay logs; by default `log`, a FakeLog. */
  eventLog?: EventLog,
) {
  const log = new FakeLog();
  const forwarded: string[] = [];
  let ids = 0;
  let conns = 0;
  const relay = new Relay(
    {
      authTimeoutMs: AUTH_TIMEOUT,
      daemonTimeoutMs: 90_000,
      graceMs: GRACE,
      historyKeep: 1000,
      daemonRate: 1000,
      daemonBurst: 2000,
      maxUnauthenticated: 256,
      acceptKey: createKeyCheck([POOL_A, POOL_B]),
      newId: () => `d${++ids}`,
      ...over,
    },
    stores,
    { forward: (text) => forwarded.push(text) },
    clock,
    eventLog ?? log,
  );
  relay.start();

  /** A new socket from `address`; like Bun, close() runs the relay's close handler at once. */
  const open = (address = "10.0.0.1"): FakeConnection => {
    const conn = new FakeConnection(`c${++conns}`, address);
    conn.onClose = (code, reason) => relay.daemonClosed(conn, code, reason);
    relay.daemonOpened(conn);
    return conn;
  };
  const send = (conn: FakeConnection, frame: Json | string): void =>
    relay.daemonMessage(conn, typeof frame === "string" ? frame : JSON.stringify(frame));
  const authFrame = (machineId: string, apiKey: string, extra: Json = {}): Json => ({
    type: "authenticate",
    apiKey,
    machineId,
    hostname: `host-${machineId}`,
    maxConcurrentTasks: 2,
    ...extra,
  });
  /** Opens a socket and sends authenticate; returns the socket with whatever it was sent. */
  const authenticate = (machineId: string, apiKey: string, address = "10.0.0.1") => {
    const conn = open(address);
    send(conn, authFrame(machineId, apiKey));
    return conn;
  };
  const spawn = (taskId: string): void =>
    relay.serverFrame(JSON.stringify({ type: "spawnTask", taskId, taskName: `job ${taskId}` }));
  return { relay, stores, clock, log, forwarded, open, send, authFrame, authenticate, spawn };
}
