/**
 * A Relay on fakes and the manual clock, for the unit tests of its guards
 * (budgets, frame caps, outbox full, heartbeat parts): sockets are
 * FakeConnections whose close runs the relay's close handler, frames for the
 * server are collected in `forwarded`, and `paused` holds the ids of the
 * sockets the relay stopped reading.
 */
import { expect } from "bun:test";
import { createKeyCheck } from "../../src/core/key-check.ts";
import { ManualClock } from "../../src/core/manual-clock.ts";
import type { Stores } from "../../src/core/ports.ts";
import { Relay, type RelayOptions } from "../../src/core/relay.ts";
import {
  createMemoryStores,
  FakeConnection,
  FakeLog,
  type Json,
  type MemoryStores,
} from "./fakes.ts";

/** The relay's own upstream key and an extra daemon key: both are accepted from daemons. */
export const RELAY_KEY = "relay-key";
export const DAEMON_KEY = "daemon-key";
export const DAEMON_TIMEOUT = 90_000;

export function relayHarness<S extends Stores = MemoryStores>(
  over: Partial<RelayOptions> = {},
  makeStores: () => S = createMemoryStores as unknown as () => S,
) {
  const clock = new ManualClock();
  const stores = makeStores();
  const log = new FakeLog();
  const forwarded: { text: string; critical: boolean }[] = [];
  const paused = new Set<string>();
  let ids = 0;
  let conns = 0;
  const relay = new Relay(
    {
      authTimeoutMs: 10_000,
      daemonTimeoutMs: DAEMON_TIMEOUT,
      graceMs: 60_000,
      historyKeep: 1000,
      daemonRate: 1000,
      daemonBurst: 2000,
      maxUnauthenticated: 256,
      acceptKey: createKeyCheck([RELAY_KEY, DAEMON_KEY]),
      newId: () => `d${++ids}`,
      ...over,
    },
    stores,
    { forward: (text, critical) => forwarded.push({ text, critical }) },
    clock,
    log,
  );
  const open = (): FakeConnection => {
    const conn = new FakeConnection(`c${++conns}`);
    Object.assign(conn, {
      pause: () => paused.add(conn.id),
      resume: () => paused.delete(conn.id),
    });
    conn.onClose = (code, reason) => relay.daemonClosed(conn, code, reason);
    relay.daemonOpened(conn);
    return conn;
  };
  const send = (conn: FakeConnection, frame: Json | string): void =>
    relay.daemonMessage(conn, typeof frame === "string" ? frame : JSON.stringify(frame));
  const authFrame = (machineId: string, capacity: number, extra: Json = {}): Json => ({
    type: "authenticate",
    apiKey: DAEMON_KEY,
    machineId,
    hostname: `host-${machineId}`,
    maxConcurrentTasks: capacity,
    ...extra,
  });
  /** Opens and authenticates a daemon; returns its socket minus the `authenticated` frame. */
  const daemon = (machineId: string, capacity: number, extra: Json = {}): FakeConnection => {
    const conn = open();
    send(conn, authFrame(machineId, capacity, extra));
    expect(conn.frames()[0]?.type).toBe("authenticated");
    conn.sent.shift();
    return conn;
  };
  const spawn = (taskId: string): void =>
    relay.serverFrame(JSON.stringify({ type: "spawnTask", taskId, taskName: `job ${taskId}` }));
  const status = (taskId: string) => stores.tasks.get(taskId)?.status;
  /** The error frames a daemon got, as `code: message`. */
  const errors = (conn: FakeConnection): string[] =>
    conn
      .frames()
      .filter((f) => f.type === "error")
      .map((f) => `${f.code}: ${f.message}`);
  /** When the relay last read a heartbeat of this connection; undefined if it is not registered. */
  const lastHeartbeat = (connId: string): number | null | undefined => {
    const d = relay.registry.get(connId);
    return d === undefined ? undefined : relay.liveness.lastHeartbeat(d);
  };
  return {
    lastHeartbeat,
    clock,
    stores,
    log,
    forwarded,
    paused,
    relay,
    open,
    send,
    authFrame,
    daemon,
    spawn,
    status,
    errors,
  };
}
