import { describe, expect, test } from "bun:test";
import { type Daemon, DaemonRegistry } from "../../src/core/daemon-registry.ts";
import { pickDaemon } from "./dispatch-rule.ts";
import { fakeDaemon } from "./fakes.ts";

interface Spec {
  id: string;
  active: number;
  capacity: number;
  turn: number;
  backpressured?: boolean;
  retired?: boolean;
}

function daemon(s: Spec): Daemon {
  return fakeDaemon(s.id, {
    daemonId: s.id,
    capacity: s.capacity,
    tasks: new Set(Array.from({ length: s.active }, (_, i) => `${s.id}-t${i}`)),
    turn: s.turn,
    backpressured: s.backpressured ?? false,
    retired: s.retired ?? false,
  });
}

/** The registry's choice, with each daemon's turn set as the case says. */
function registryPick(specs: Spec[]): string | undefined {
  const registry = new DaemonRegistry();
  for (const spec of specs) {
    const d = registry.add(daemon(spec));
    d.turn = spec.turn;
    registry.changed(d);
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
