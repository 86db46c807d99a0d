import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/core/manual-clock.ts";
import {
  OUTPUT_EVENT_EVERY_MS,
  TaskTimeline,
  TIMELINE_HEAD,
  TIMELINE_LIMIT,
} from "../../src/core/task-timeline.ts";
import { createMemoryStores } from "../../src/store/memory-stores.ts";
import { relayHarness } from "./relay-harness.ts";

const T0 = 1_700_000_000_000;

function setup() {
  const clock = new ManualClock(T0);
  const stores = createMemoryStores();
  let holding = false;
  const timeline = new TaskTimeline({
    store: stores.taskEvents,
    tasks: stores.tasks,
    clock,
    upstreamHolding: () => holding,
  });
  /** A task received now, as the task book records it. */
  const receive = (taskId: string) => {
    stores.tasks.savePending({ taskId, taskName: "n", spawnFrame: "{}", receivedAt: clock.now() });
    timeline.received(taskId);
  };
  const dispatch = (taskId: string, machineId: string) => {
    stores.tasks.markDispatched(taskId, `daemon-of-${machineId}`, machineId, clock.now());
    timeline.dispatched(taskId, machineId);
  };
  const end = (taskId: string, status: "completed" | "failed" | "lost", error: string | null) => {
    stores.tasks.markEnded(taskId, status, clock.now(), error);
    timeline.ended(taskId, status);
  };
  const kinds = (taskId: string) => timeline.view(taskId)?.events.map((e) => e.kind);
  return {
    clock,
    stores,
    timeline,
    receive,
    dispatch,
    end,
    kinds,
    hold: (h: boolean) => {
      holding = h;
    },
  };
}

describe("TaskTimeline", () => {
  test("every kind of event, in order, with its time, machine, detail and output counts", () => {
    const { clock, timeline, receive, dispatch, end } = setup();
    receive("t");
    timeline.queued("t", 3);
    clock.advance(10);
    dispatch("t", "m-1");
    timeline.commandsDelivered("t", 2);
    clock.advance(10);
    timeline.output("t", 100);
    timeline.output("t", 50);
    timeline.statusReported("t", "running");
    clock.advance(10);
    timeline.away("t");
    clock.advance(10);
    timeline.reattached("t", "m-1");
    timeline.throttled("t", "10 frames/s");
    timeline.output("t", 25);
    clock.advance(10);
    end("t", "completed", null);
    const at = (ms: number) => T0 + ms;
    const out = (frames: number, bytes: number) => ({ outputFrames: frames, outputBytes: bytes });
    const none = { upstream: null, ...out(0, 0) };
    expect(timeline.view("t")).toMatchObject({
      events: [
        { at: at(0), kind: "received", machineId: null, detail: "attempt 1", ...none },
        { at: at(0), kind: "queued", machineId: null, detail: "behind 3 tasks", ...none },
        {
          at: at(10),
          kind: "dispatched",
          machineId: "m-1",
          detail: "daemon daemon-of-m-1",
          ...none,
        },
        { at: at(10), kind: "commandsDelivered", machineId: "m-1", detail: "2 commands", ...none },
        { at: at(20), kind: "statusReported", detail: "running", upstream: null, ...out(2, 150) },
        { at: at(30), kind: "away", machineId: "m-1", detail: null, ...out(2, 150) },
        { at: at(40), kind: "reattached", machineId: "m-1", ...out(2, 150) },
        { at: at(40), kind: "throttled", detail: "over 10 frames/s", ...out(2, 150) },
        { at: at(50), kind: "completed", detail: null, upstream: "sent", ...out(3, 175) },
      ],
      omitted: 0,
      omittedAfter: null,
      ...out(3, 175),
    });
  });

  test("a task dispatched at once has no queued event; a failure shows its error and a held result", () => {
    const { timeline, receive, dispatch, end, hold, kinds } = setup();
    receive("t");
    dispatch("t", "m-1");
    hold(true);
    end("t", "failed", "exit code 3");
    expect(kinds("t")).toEqual(["received", "dispatched", "failed"]);
    expect(timeline.view("t")?.events.at(-1)).toMatchObject({
      kind: "failed",
      machineId: "m-1",
      detail: "exit code 3",
      upstream: "held",
    });
  });

  test("output is counted in memory: live in the view, stored only at most every interval", () => {
    const { clock, stores, timeline, receive, dispatch } = setup();
    receive("t");
    dispatch("t", "m-1");
    for (let i = 0; i < 1000; i++) timeline.output("t", 10);
    expect(stores.taskEvents.list("t")).toEqual([]);
    expect(timeline.view("t")).toMatchObject({ outputFrames: 1000, outputBytes: 10_000 });
    clock.advance(OUTPUT_EVENT_EVERY_MS);
    timeline.output("t", 10);
    clock.advance(OUTPUT_EVENT_EVERY_MS - 1);
    for (let i = 0; i < 10; i++) timeline.output("t", 10);
    expect(stores.taskEvents.list("t")).toMatchObject([
      { kind: "output", at: T0 + OUTPUT_EVENT_EVERY_MS, outputFrames: 1001, outputBytes: 10_010 },
    ]);
    expect(timeline.view("t")).toMatchObject({ outputFrames: 1011, outputBytes: 10_110 });
    // Frames for a task the timeline does not follow (ended, unknown) are ignored.
    timeline.output("other", 10);
    expect(timeline.view("other")).toBeNull();
  });

  test(`keeps the first ${TIMELINE_HEAD} and the newest events, ${TIMELINE_LIMIT} at most, and counts those left out`, () => {
    const { stores, timeline, receive, dispatch, end } = setup();
    receive("t");
    dispatch("t", "m-1");
    const reported = 100;
    for (let i = 0; i < reported; i++) timeline.statusReported("t", `s${i}`);
    end("t", "completed", null);
    const stored = stores.taskEvents.list("t");
    expect(stored).toHaveLength(TIMELINE_LIMIT);
    const view = timeline.view("t");
    const details = view?.events.map((e) => e.detail) ?? [];
    const firstKept = reported + 1 - (TIMELINE_LIMIT - TIMELINE_HEAD);
    expect({
      omitted: view?.omitted,
      omittedAfter: view?.omittedAfter,
      around: details.slice(TIMELINE_HEAD + 1, TIMELINE_HEAD + 3),
      last: view?.events.at(-1)?.kind,
      length: view?.events.length,
    }).toEqual({
      omitted: reported + 1 - TIMELINE_LIMIT,
      // received and dispatched come first, then the stored head.
      omittedAfter: TIMELINE_HEAD + 1,
      around: [`s${TIMELINE_HEAD - 1}`, `s${firstKept}`],
      last: "completed",
      length: TIMELINE_LIMIT + 2,
    });
  });

  test("after a restart an active task's timeline goes on after its last stored event", () => {
    const { clock, stores, receive, dispatch } = setup();
    receive("t");
    dispatch("t", "m-1");
    const before = new TaskTimeline({
      store: stores.taskEvents,
      tasks: stores.tasks,
      clock,
      upstreamHolding: () => false,
    });
    before.received("t");
    before.dispatched("t", "m-1");
    before.output("t", 7);
    before.statusReported("t", "running");
    // A new process: the timeline knows nothing until the task book restores it.
    const after = new TaskTimeline({
      store: stores.taskEvents,
      tasks: stores.tasks,
      clock,
      upstreamHolding: () => false,
    });
    after.restored("t", "m-1");
    after.output("t", 3);
    after.away("t");
    expect(stores.taskEvents.list("t")).toMatchObject([
      { n: 0, kind: "statusReported", outputFrames: 1, outputBytes: 7 },
      { n: 1, kind: "away", machineId: "m-1", outputFrames: 2, outputBytes: 10 },
    ]);
  });

  test("a new attempt of an ended task starts a new timeline, numbered from its received", () => {
    const { stores, timeline, receive, dispatch, end, kinds } = setup();
    receive("t");
    dispatch("t", "m-1");
    end("t", "lost", "daemon lost");
    receive("t");
    timeline.queued("t", 0);
    expect(kinds("t")).toEqual(["received", "queued"]);
    expect(timeline.view("t")?.events[0]?.detail).toBe("attempt 2");
    expect(stores.taskEvents.list("t").map((e) => e.n)).toEqual([0]);
  });
});

describe("TaskTimeline in the relay core", () => {
  test("a throttled daemon's tasks hear of the episode once; output and the end are counted", () => {
    const h = relayHarness({ daemonRate: 10, daemonBurst: 5 });
    const d = h.daemon("m1", 2);
    h.spawn("t1");
    h.spawn("t2");
    for (let i = 0; i < 8; i++) h.send(d, `{"type":"taskOutput","taskId":"t1","line":${i}}`);
    h.send(d, { type: "taskComplete", taskId: "t1", success: true });
    const kinds = (id: string) => h.relay.timeline.view(id)?.events.map((e) => e.kind);
    expect({ t1: kinds("t1"), t2: kinds("t2") }).toEqual({
      t1: ["received", "dispatched", "throttled", "completed"],
      t2: ["received", "dispatched", "throttled"],
    });
    expect(h.relay.timeline.view("t1")?.events.at(-1)).toMatchObject({
      kind: "completed",
      machineId: "m1",
      outputFrames: 8,
      // The harness's forwarder has no outbox: nothing waits.
      upstream: "sent",
    });
    expect(h.relay.timeline.view("t2")?.events[2]?.detail).toBe("over 10 frames/s");
  });
});
