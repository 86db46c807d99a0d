/**
 * Repeated failures from one address are one connection-log row with a
 * count, a new row per minute; security events keep their own rows.
 */
import { expect, test } from "bun:test";
import { ManualClock } from "../../src/core/manual-clock.ts";
import { MAX_SOURCES, REPEAT_WINDOW_MS, RepeatedEvents } from "../../src/core/repeated-events.ts";
import { createLogger } from "../../src/log/logger.ts";
import { admissionHarness, POOL_A, POOL_B } from "./admission-harness.ts";
import { createMemoryStores, FakeLog } from "./fakes.ts";

function logged() {
  const clock = new ManualClock();
  const stores = createMemoryStores();
  const lines: string[] = [];
  const log = createLogger({ level: "debug", clock, write: (l) => lines.push(l) });
  log.attach(stores.connectionLog);
  return { clock, stores, log, lines };
}

test("300 failed authentications from one address are one row saying how many", () => {
  const { clock, stores, log } = logged();
  const relay = admissionHarness(stores, { maxUnauthenticated: 1000 }, clock, log);
  for (let i = 0; i < 300; i++) relay.authenticate(`m-${i}`, "wrong-key", "10.6.6.6");
  relay.authenticate("m-x", "wrong-key", "10.7.7.7");
  const rows = stores.connectionLog.list(200);
  expect(rows.map((r) => r.details)).toEqual([
    "Daemon from 10.7.7.7 rejected: invalid API key",
    "Daemon from 10.6.6.6 rejected 300 times in the last minute (latest: invalid API key)",
  ]);
  // A minute later the same address starts a new row; the old one stays as it was.
  clock.advance(REPEAT_WINDOW_MS);
  relay.authenticate("m-y", "wrong-key", "10.6.6.6");
  expect(stores.connectionLog.list(200).map((r) => r.details)).toEqual([
    "Daemon from 10.6.6.6 rejected: invalid API key",
    "Daemon from 10.7.7.7 rejected: invalid API key",
    "Daemon from 10.6.6.6 rejected 300 times in the last minute (latest: invalid API key)",
  ]);
});

test("takeover refusals are security events, aggregated per address and machineId", () => {
  const { clock, stores, log } = logged();
  const relay = admissionHarness(stores, { maxUnauthenticated: 1000 }, clock, log);
  relay.authenticate("gpu-01", POOL_A, "10.0.0.1");
  for (let i = 0; i < 5; i++) relay.authenticate("gpu-01", POOL_B, "10.6.6.6");
  relay.authenticate("gpu-01", POOL_B, "10.6.6.7");
  // Then noise from 300 addresses: 300 rows, yet the record of the attack stays in sight.
  for (let i = 0; i < 300; i++)
    relay.authenticate(`noise-${i}`, "wrong", `10.9.${i >> 8}.${i & 255}`);
  const refused = stores.connectionLog
    .list(50)
    .filter((r) => r.event === "machine_takeover_refused")
    .map((r) => r.details);
  expect(refused).toEqual([
    "Daemon from 10.6.6.7 refused: machineId gpu-01 is bound to another key",
    "Daemon from 10.6.6.6 refused 5 times in the last minute: machineId gpu-01 is bound to another key",
  ]);
});

test("a window per source and event; the oldest source is forgotten past MAX_SOURCES", () => {
  const clock = new ManualClock();
  const log = new FakeLog();
  const repeated = new RepeatedEvents(clock, log);
  const t0 = clock.now();
  const note = (source: string) =>
    repeated.note({ event: "e", source, level: "warn", details: (n) => `${source} x${n}` });
  note("a");
  note("a");
  clock.advance(REPEAT_WINDOW_MS - 1);
  note("a");
  clock.advance(1);
  note("a");
  expect(log.entries.map((e) => [e.details, e.options?.replaces])).toEqual([
    ["a x1", `e a ${t0}`],
    ["a x2", `e a ${t0}`],
    ["a x3", `e a ${t0}`],
    ["a x1", `e a ${t0 + REPEAT_WINDOW_MS}`],
  ]);
  for (let i = 0; i < MAX_SOURCES; i++) note(`s${i}`);
  log.entries.length = 0;
  note("a"); // forgotten: a new window (and row) starts
  expect(log.entries.map((e) => e.details)).toEqual(["a x1"]);
});
