import { expect, test } from "bun:test";
import { type Daemon, DaemonRegistry } from "../../src/core/daemon-registry.ts";
import { FakeConnection, fakeDaemon } from "./fakes.ts";

const entry = (conn: FakeConnection, machineId: string): Daemon =>
  fakeDaemon(conn.id, { conn, machineId, hostname: "h" });

test("unauthenticated connections are taken once, with their timer", () => {
  const r = new DaemonRegistry();
  const c = new FakeConnection("c1");
  r.addUnauthenticated(c, 5, 42);
  expect(r.unauthenticatedCount).toBe(1);
  expect(r.unauthenticatedConnections()).toEqual([c]);
  expect(r.takeUnauthenticated("c1")).toBe(42);
  expect(r.takeUnauthenticated("c1")).toBeUndefined();
  expect(r.unauthenticatedCount).toBe(0);
});

test("turns increase; removal is idempotent and keeps a newer connection of the same machine", () => {
  const r = new DaemonRegistry();
  const a = r.add(entry(new FakeConnection("c1"), "m1"));
  const b = r.add(entry(new FakeConnection("c2"), "m1"));
  expect(b.turn).toBeGreaterThan(a.turn);
  expect(r.byMachineId("m1")).toBe(b);
  expect(r.remove("c1")).toBe(a);
  expect(r.remove("c1")).toBeUndefined();
  expect(r.byMachineId("m1")).toBe(b); // the old one's removal must not unmap the new one
  expect(r.size).toBe(1);
  const snapshot = r.list();
  expect(r.remove("c2")).toBe(b);
  expect(snapshot).toEqual([b]);
  expect(r.byMachineId("m1")).toBeUndefined();
  expect([...r.all()]).toEqual([]);
});
