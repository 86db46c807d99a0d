import { describe, expect, test } from "bun:test";
import { runSeed, runSeeds } from "../../src/simulation/run.ts";

const STEPS = 2000;

describe("deterministic simulation", () => {
  // 200 seeds × 2000 steps: memory stores are fast, SQLite (with crashes) costs ~5× more a seed.
  test("200 seeds × 2000 steps (160 on memory stores, 40 on SQLite with crashes): no violation", () => {
    const memory = runSeeds(1, 160, STEPS, () => ["memory"]);
    const sqlite = runSeeds(161, 40, STEPS, () => ["sqlite"]);
    const violations = [...memory.violations, ...sqlite.violations].map((r) => r.violation);
    expect({
      runs: memory.results.length + sqlite.results.length,
      crashes: sqlite.results.reduce((n, r) => n + r.crashes, 0) > 0,
      violations,
    }).toEqual({ runs: 200, crashes: true, violations: [] });
  }, 120_000);

  test("a completion the store never writes is caught, and its seed replays to the same violation", () => {
    const first = runSeeds(1, 20, STEPS, () => ["memory"], { plant: "drop-completed-writes" });
    const caught = first.violations[0]?.violation;
    expect(caught?.invariant).toBe("statusMatchesStore");
    if (!caught) return;
    const replay = runSeed({
      seed: caught.seed,
      steps: STEPS,
      stores: caught.stores,
      plant: "drop-completed-writes",
    });
    expect(replay.violation).toEqual(caught);
  });

  test("a daemon socket that drops frames while paused is caught on SQLite too", () => {
    const r = runSeeds(1, 10, 500, () => ["sqlite"], { plant: "drop-paused-frames" });
    const caught = r.violations[0]?.violation;
    expect(caught?.invariant).toBe("framesArriveOnceInOrder");
    if (!caught) return;
    const replay = runSeed({ ...caught, steps: 500, plant: "drop-paused-frames" });
    expect({ step: replay.violation?.step, message: replay.violation?.message }).toEqual({
      step: caught.step,
      message: caught.message,
    });
  });

  // Known core issue (src/simulation/README.md): heartbeats that waited in a paused socket
  // are read after a spawnTask and count as two omissions. Remove `.failing` once fixed.
  test.failing("known issue: a task its daemon runs is not declared lost (seed 6, strict)", () => {
    expect(runSeed({ seed: 6, steps: STEPS, stores: "memory", strict: true }).violation).toBeNull();
  });
});
