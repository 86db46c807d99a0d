import { describe, expect, test } from "bun:test";
import { runInProcesses } from "../../src/simulation/parallel.ts";
import { runSeed, runSeeds } from "../../src/simulation/run.ts";

const STEPS = 2000;

describe("deterministic simulation", () => {
  // What `bun run simulate` runs by default: seeds 1..200 × 2000 steps on memory stores, every
  // fourth also on SQLite with crashes and commit faults, in two processes (two cores).
  // About 40 s on two idle cores; the timeout leaves room for a machine busy with other suites.
  test("200 seeds × 2000 steps (200 runs on memory stores, 50 on SQLite with crashes): no violation", async () => {
    const plan = {
      first: 1,
      count: 200,
      steps: STEPS,
      stores: "both",
      plant: null,
      strict: true,
    } as const;
    const { results, violations } = await runInProcesses(plan, 2);
    expect({
      memory: results.filter((r) => r.stores === "memory").length,
      sqlite: results.filter((r) => r.stores === "sqlite").length,
      crashed: results.some((r) => r.crashes > 0),
      violations: violations.map((r) => r.violation),
    }).toEqual({ memory: 200, sqlite: 50, crashed: true, violations: [] });
  }, 240_000);

  test("a completion the store never writes is caught, and its seed replays to the same violation", () => {
    const first = runSeeds(1, 20, STEPS, () => ["memory"], { plant: "drop-completed-writes" });
    const caught = first.violations
      .map((r) => r.violation)
      .find((v) => v?.invariant === "statusMatchesStore");
    expect(caught?.invariant).toBe("statusMatchesStore");
    if (!caught) return;
    const replay = runSeed({
      seed: caught.seed,
      steps: STEPS,
      stores: caught.stores,
      plant: "drop-completed-writes",
    });
    expect(replay.violation).toEqual(caught);
  }, 60_000);

  test("a daemon socket that drops frames while paused is caught on SQLite too", () => {
    const r = runSeeds(1, 10, 500, () => ["sqlite"], { plant: "drop-paused-frames" });
    const caught = r.violations
      .map((x) => x.violation)
      .find((v) => v?.message.includes("written but never read"));
    expect(caught?.invariant).toBe("framesArriveOnceInOrder");
    if (!caught) return;
    const replay = runSeed({
      seed: caught.seed,
      stores: caught.stores,
      steps: 500,
      plant: "drop-paused-frames",
    });
    expect({ step: replay.violation?.step, message: replay.violation?.message }).toEqual({
      step: caught.step,
      message: caught.message,
    });
  }, 60_000);

  // Regressions found by the simulation: heartbeats that waited in a paused socket once
  // counted as omissions (seed 6, strict), and a command whose send was dropped was held
  // again behind one that arrived later (seed 919).
  test("heartbeats read after a pause do not lose a task its daemon runs (seed 6, strict)", () => {
    expect(runSeed({ seed: 6, steps: STEPS, stores: "memory", strict: true }).violation).toBeNull();
  });

  test("held commands keep the server's order across a dropped send (seed 919)", () => {
    expect(runSeed({ seed: 919, steps: STEPS, stores: "memory" }).violation).toBeNull();
  });
});
