/**
 * GET /tasks/:taskId/events against the relay with real sockets and a real
 * SQLite file: a task that waits, gets a command, streams output, reports a
 * status, loses its daemon and gets it back, and completes; a failed and a
 * lost task; an unknown one.
 */
import { describe, expect, test } from "bun:test";
import { connectSimDaemon } from "../../src/sim/index.ts";
import { startLinked } from "../helpers/linked.ts";
import { metric, pollUntil } from "../helpers/probes.ts";
import { TEST_KEY, type TestRelay } from "../helpers/relay.ts";

interface Event {
  at: string;
  kind: string;
  machineId: string | null;
  detail: string | null;
  upstream: string | null;
  outputFrames: number;
  outputBytes: number;
}

interface Timeline {
  taskId: string;
  status: string;
  events: Event[];
  omitted: number;
  outputFrames: number;
  outputBytes: number;
}

const timeline = (relay: TestRelay, taskId: string) =>
  relay.json<Timeline>(`/tasks/${taskId}/events`);

/** Polls the timeline until it has an event of `kind`. */
const untilKind = (relay: TestRelay, taskId: string, kind: string) =>
  pollUntil(
    () => timeline(relay, taskId),
    // A 404 (no events) until the relay has read the spawnTask.
    (t) => (t.events ?? []).some((e) => e.kind === kind),
  );

describe("GET /tasks/:taskId/events", () => {
  test("queued, dispatched, a waiting command, status, output, daemon away and back, completed", async () => {
    await using stage = await startLinked({ machineId: "tl-machine", maxConcurrentTasks: 1 });
    const { server, relay, d } = stage;
    server.spawnTask("busy");
    await d.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === "busy");
    // The only slot is taken: tl waits, and so does a command for it.
    server.spawnTask("tl", "timeline");
    await untilKind(relay, "tl", "queued");
    server.sendMessage("tl", "hello");
    // Received (and so waiting) before the slot frees: the two arrive on different sockets.
    await pollUntil(
      () =>
        metric(
          relay,
          'makima_relay_frames_relayed_total{direction="server_to_daemon",type="sendMessage"}',
        ),
      (n) => n === 1,
    );
    d.complete("busy", true);
    await d.waitFor((f) => f.msg?.type === "sendMessage" && f.msg.taskId === "tl");
    d.statusChange("tl", "pending", "running");
    const line = "é".repeat(10); // 20 UTF-8 bytes in the text
    for (let i = 0; i < 3; i++) d.taskOutput("tl", line);
    const frameBytes = Buffer.byteLength(
      JSON.stringify({ type: "taskOutput", taskId: "tl", output: line }),
    );
    // Live: counted in memory while the task runs, before any event stored them.
    const live = await pollUntil(
      () => timeline(relay, "tl"),
      (t) => t.outputFrames === 3,
    );
    expect({ frames: live.outputFrames, bytes: live.outputBytes }).toEqual({
      frames: 3,
      bytes: 3 * frameBytes,
    });
    await d.close();
    await untilKind(relay, "tl", "away");
    await using back = await connectSimDaemon({
      url: relay.daemonUrl,
      apiKey: TEST_KEY,
      machineId: "tl-machine",
      maxConcurrentTasks: 1,
    });
    await back.authenticated;
    await untilKind(relay, "tl", "reattached");
    back.complete("tl", true);
    await server.waitFor((f) => f.msg?.type === "taskComplete" && f.msg.taskId === "tl");
    const done = await untilKind(relay, "tl", "completed");
    const at = done.events.map((e) => Date.parse(e.at));
    expect({
      status: done.status,
      events: done.events.map(({ kind, machineId, detail, upstream, outputFrames }) => ({
        kind,
        machineId,
        detail,
        upstream,
        outputFrames,
      })),
      inOrder: at.every((t, i) => i === 0 || t >= (at[i - 1] as number)),
      omitted: done.omitted,
      output: [done.outputFrames, done.outputBytes],
    }).toEqual({
      status: "completed",
      events: [
        { kind: "received", machineId: null, detail: "attempt 1", upstream: null, outputFrames: 0 },
        {
          kind: "queued",
          machineId: null,
          detail: "behind 0 tasks",
          upstream: null,
          outputFrames: 0,
        },
        {
          kind: "dispatched",
          machineId: "tl-machine",
          detail: expect.stringMatching(/^daemon /),
          upstream: null,
          outputFrames: 0,
        },
        {
          kind: "commandsDelivered",
          machineId: "tl-machine",
          detail: "1 command",
          upstream: null,
          outputFrames: 0,
        },
        {
          kind: "statusReported",
          machineId: "tl-machine",
          detail: "running",
          upstream: null,
          outputFrames: 0,
        },
        { kind: "away", machineId: "tl-machine", detail: null, upstream: null, outputFrames: 3 },
        {
          kind: "reattached",
          machineId: "tl-machine",
          detail: null,
          upstream: null,
          outputFrames: 3,
        },
        {
          kind: "completed",
          machineId: "tl-machine",
          detail: null,
          upstream: "sent",
          outputFrames: 3,
        },
      ],
      inOrder: true,
      omitted: 0,
      output: [3, 3 * frameBytes],
    });
  });

  test("a failed task shows its error; a lost one the relay's; an unknown one is a 404", async () => {
    await using stage = await startLinked(
      { machineId: "tl-fail", maxConcurrentTasks: 2 },
      { MAKIMA_RELAY_GRACE_MS: "100" },
    );
    const { server, relay, d } = stage;
    server.spawnTask("fails");
    server.spawnTask("lost");
    await d.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === "lost");
    d.complete("fails", false, "exit code 3");
    const failed = await untilKind(relay, "fails", "failed");
    expect(failed.events.at(-1)).toMatchObject({
      kind: "failed",
      machineId: "tl-fail",
      detail: "exit code 3",
      upstream: "sent",
    });
    await d.close();
    const lost = await untilKind(relay, "lost", "lost");
    expect(lost.events.map((e) => [e.kind, e.detail])).toEqual([
      ["received", "attempt 1"],
      ["dispatched", expect.stringMatching(/^daemon /)],
      ["away", null],
      ["lost", "daemon lost"],
    ]);
    const unknown = await relay.get("/tasks/nobody/events");
    expect({ status: unknown.status, body: await unknown.json() }).toEqual({
      status: 404,
      body: { error: "task 'nobody' not found" },
    });
  });
});
