import { describe, expect, test } from "bun:test";
import type { Daemon } from "../../src/core/daemon.ts";
import { DaemonRegistry } from "../../src/core/daemon-registry.ts";
import { pickDaemon } from "./dispatch-rule.ts";
import { fakeDaemon, fakeIdentity } from "./fakes.ts";

interface Spec {
  id: string;
  active: number;
  capacity: number;
  turn: number;
  backpressured?: boolean;
  retired?: boolean;
}

const taskIds = (s: Spec): string[] => Array.from({ length: s.active }, (_, i) => `${s.id}-t${i}`);

/** The case as plain records, for the scan that states the rule. */
function daemon(s: Spec): Daemon {
  return fakeDaemon(s.id, {
    daemonId: s.id,
    capacity: s.capacity,
    holds: new Set(taskIds(s)),
    turn: s.turn,
    backpressured: s.backpressured ?? false,
    retired: s.retired ?? false,
  });
}

/**
 * The registry's choice, reached through its transitions only: the daemons
 * connect in the order listed; then, in the order of their turns, each is
 * given its tasks (a dispatch moves its turn back; an idle one gets a task
 * back at once, for its turn), and last capacity, backpressure and
 * retirement are set as the case says.
 */
function registryPick(specs: Spec[]): string | undefined {
  const registry = new DaemonRegistry();
  const added = specs.map(
    (s) => registry.add(fakeIdentity(s.id, { daemonId: s.id, capacity: s.active + 1 })).daemon,
  );
  const byTurn = specs.map((s, i) => [s, added[i] as Daemon] as const);
  byTurn.sort(([a], [b]) => a.turn - b.turn);
  for (const [spec, d] of byTurn) {
    for (const id of taskIds(spec)) registry.assign(d, id);
    if (spec.active === 0) {
      registry.assign(d, `${spec.id}-turn`);
      registry.release(`${spec.id}-turn`);
    }
  }
  for (const [spec, d] of byTurn) {
    registry.setCapacity(d, spec.capacity);
    if (spec.backpressured) registry.setBackpressured(d, true);
    if (spec.retired) registry.retire(d);
  }
  return registry.pick()?.daemonId;
}

describe("dispatch choice", () => {
  const cases: [string, Spec[], string | undefined][] = [
    ["no daemons", [], undefined],
    [
      "least loaded wins",
      [
        { id: "a", active: 2, capacity: 5, turn: 1 },
        { id: "b", active: 1, capacity: 5, turn: 2 },
        { id: "c", active: 3, capacity: 5, turn: 3 },
      ],
      "b",
    ],
    [
      "full daemons are skipped even if they would win the tie",
      [
        { id: "a", active: 2, capacity: 2, turn: 1 },
        { id: "b", active: 4, capacity: 10, turn: 2 },
      ],
      "b",
    ],
    ["capacity 0 never gets a task", [{ id: "a", active: 0, capacity: 0, turn: 1 }], undefined],
    [
      "everyone full",
      [
        { id: "a", active: 1, capacity: 1, turn: 1 },
        { id: "b", active: 3, capacity: 3, turn: 2 },
      ],
      undefined,
    ],
    [
      "over capacity (capacity lowered) counts as full",
      [
        { id: "a", active: 5, capacity: 2, turn: 1 },
        { id: "b", active: 3, capacity: 4, turn: 2 },
      ],
      "b",
    ],
    [
      "backpressured daemons are skipped",
      [
        { id: "a", active: 0, capacity: 4, turn: 1, backpressured: true },
        { id: "b", active: 2, capacity: 4, turn: 2 },
      ],
      "b",
    ],
    [
      "retired daemons are skipped",
      [
        { id: "a", active: 0, capacity: 4, turn: 1, retired: true },
        { id: "b", active: 1, capacity: 4, turn: 2 },
      ],
      "b",
    ],
    [
      "tie goes to the lower turn (waited longest), whatever the order",
      [
        { id: "a", active: 1, capacity: 4, turn: 9 },
        { id: "b", active: 1, capacity: 4, turn: 3 },
        { id: "c", active: 1, capacity: 4, turn: 5 },
      ],
      "b",
    ],
    [
      "fewer tasks beats a lower turn",
      [
        { id: "a", active: 1, capacity: 4, turn: 1 },
        { id: "b", active: 0, capacity: 4, turn: 99 },
      ],
      "b",
    ],
  ];
  test.each(cases)("%s", (_name, specs, expected) => {
    expect(registryPick(specs)).toBe(expected as string);
    expect(pickDaemon(specs.map(daemon))?.daemonId).toBe(expected as string);
  });
});
