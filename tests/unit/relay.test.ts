import { describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/core/manual-clock.ts";
import type { Stores } from "../../src/core/ports.ts";
import type { RelayOptions } from "../../src/core/relay.ts";
import { RECONCILE_SETTLE_MS } from "../../src/core/task-book.ts";
import { createStores, openDatabase } from "../../src/store/database.ts";
import { createWriteBatch } from "../../src/store/write-batch.ts";
import { createMemoryStores, type FakeConnection, type Json } from "./fakes.ts";
import { DAEMON_KEY, DAEMON_TIMEOUT, RELAY_KEY, relayHarness } from "./relay-harness.ts";

/** The harness's auth timeout and grace period (the Relay's defaults in relay-harness.ts). */
const AUTH_TIMEOUT = 10_000;
const GRACE = 60_000;

/** Both store implementations must give the relay the same behaviour. */
const storeKinds: [string, () => Stores][] = [
  ["memory stores", () => createMemoryStores()],
  [
    "sqlite :memory: stores",
    () => {
      const db = openDatabase(":memory:");
      return createStores(db.db, db.sqlite, { logKeep: 1000 });
    },
  ],
];

/** The shared relay harness (relay-harness.ts) over either store kind, plus server-side helpers. */
function harness(makeStores: () => Stores, over: Partial<RelayOptions> = {}) {
  const h = relayHarness(over, makeStores);
  const server = (frame: Json | string): void =>
    h.relay.serverFrame(typeof frame === "string" ? frame : JSON.stringify(frame));
  const spawn = (taskId: string): string => {
    const text = spawnText(taskId);
    server(text);
    return text;
  };
  const upstreamTypes = () => h.forwarded.map((f) => (JSON.parse(f.text) as Json).type);
  return { ...h, server, spawn, upstreamTypes };
}

/** Odd spacing, number formats and unknown fields: any re-encoding would show. */
const spawnText = (taskId: string): string =>
  `{"type":"spawnTask",  "taskId":"${taskId}","taskName":"job ${taskId}","payload":{"z":1.0,"a":[2e0, "é"]}}`;
const control = (type: string, taskId: string, extra = ""): string =>
  `{"type":"${type}","taskId":"${taskId}"${extra}}`;
const taskIdsIn = (conn: FakeConnection, type = "spawnTask"): string[] =>
  conn
    .frames()
    .filter((f) => f.type === type)
    .map((f) => f.taskId as string);

describe.each(storeKinds)("Relay with %s", (_kind, makeStores) => {
  describe("authentication", () => {
    test("success: authenticated with a fresh daemonId, capacity from the frame", () => {
      const h = harness(makeStores);
      const conn = h.open();
      expect(h.relay.registry.unauthenticatedCount).toBe(1);
      h.send(conn, h.authFrame("m1", 3));
      expect(conn.frames()).toEqual([{ type: "authenticated", daemonId: "d1" }]);
      expect(conn.closed).toBeNull();
      expect(h.relay.registry.unauthenticatedCount).toBe(0);
      const d = h.relay.registry.get(conn.id);
      expect([d?.daemonId, d?.machineId, d?.capacity, d?.role]).toEqual(["d1", "m1", 3, "daemon"]);
      expect(h.forwarded).toEqual([]); // authenticate is never forwarded
      expect(h.log.events("downstream_connect").length).toBe(1);
    });

    test("both the relay's own key and extra daemon keys are accepted", () => {
      const h = harness(makeStores);
      for (const key of [RELAY_KEY, DAEMON_KEY]) {
        const conn = h.open();
        h.send(conn, h.authFrame(`m-${key}`, 1, { apiKey: key }));
        expect(conn.types()).toEqual(["authenticated"]);
      }
      expect(h.relay.registry.size).toBe(2);
    });

    test("role relay is recorded", () => {
      const h = harness(makeStores);
      const conn = h.daemon("child", 2, { role: "relay" });
      expect(h.relay.registry.get(conn.id)?.role).toBe("relay");
    });

    const failures: [string, (h: ReturnType<typeof harness>) => Json | string, string, RegExp][] = [
      ["wrong key", (h) => h.authFrame("m1", 1, { apiKey: "nope" }), "unauthorized", /key/i],
      ["empty key", (h) => h.authFrame("m1", 1, { apiKey: "" }), "unauthorized", /key/i],
      [
        "heartbeat first",
        () => ({ type: "heartbeat", activeTasks: [] }),
        "badMessage",
        /authenticate/,
      ],
      [
        "taskComplete first",
        () => ({ type: "taskComplete", taskId: "t", success: true }),
        "badMessage",
        /authenticate/,
      ],
      ["not JSON", () => "{oops", "badMessage", /JSON/],
      ["array", () => "[1]", "badMessage", /object/],
      ["maxConcurrentTasks -1", (h) => h.authFrame("m1", -1), "badMessage", /maxConcurrentTasks/],
      ["maxConcurrentTasks 1.5", (h) => h.authFrame("m1", 1.5), "badMessage", /maxConcurrentTasks/],
      [
        "missing machineId",
        () => ({ type: "authenticate", apiKey: DAEMON_KEY, hostname: "h", maxConcurrentTasks: 1 }),
        "badMessage",
        /machineId/,
      ],
    ];
    test.each(failures)("failure: %s → error frame then close 4401", (_n, make, code, message) => {
      const h = harness(makeStores);
      const conn = h.open();
      h.send(conn, make(h));
      const frames = conn.frames();
      expect(frames.length).toBe(1);
      expect(frames[0]).toMatchObject({ type: "error", code });
      expect(frames[0]?.message as string).toMatch(message);
      expect(conn.closed?.code).toBe(4401);
      expect(h.relay.registry.size).toBe(0);
      expect(h.relay.registry.unauthenticatedCount).toBe(0);
      // Anything after the rejection is ignored.
      h.send(conn, h.authFrame("m1", 1));
      expect(conn.sent.length).toBe(1);
      expect(h.relay.registry.size).toBe(0);
    });

    test("auth timeout via the clock → unauthorized, 4401", () => {
      const h = harness(makeStores);
      const conn = h.open();
      h.clock.advance(AUTH_TIMEOUT - 1);
      expect(conn.closed).toBeNull();
      h.clock.advance(1);
      expect(conn.frames()).toEqual([
        { type: "error", code: "unauthorized", message: expect.stringContaining("timeout") },
      ]);
      expect(conn.closed?.code).toBe(4401);
      expect(h.relay.registry.unauthenticatedCount).toBe(0);
      h.send(conn, h.authFrame("m1", 1));
      expect(h.relay.registry.size).toBe(0);
    });

    test("authenticating in time cancels the timeout; closing early clears it", () => {
      const h = harness(makeStores);
      const a = h.daemon("m1", 1);
      const b = h.open();
      b.close(1000, "bye");
      expect(h.relay.registry.unauthenticatedCount).toBe(0);
      expect(h.clock.timerCount).toBe(0);
      h.clock.advance(AUTH_TIMEOUT * 2);
      expect(a.sent).toEqual([]);
      expect(a.closed).toBeNull();
    });

    test("a second authenticate gets badMessage and changes nothing", () => {
      const h = harness(makeStores);
      const conn = h.daemon("m1", 1);
      h.send(conn, h.authFrame("other-machine", 9));
      expect(conn.frames()).toEqual([
        { type: "error", code: "badMessage", message: expect.stringContaining("already") },
      ]);
      expect(conn.closed).toBeNull();
      const d = h.relay.registry.get(conn.id);
      expect([d?.machineId, d?.capacity, d?.daemonId]).toEqual(["m1", 1, "d1"]);
      expect(h.forwarded).toEqual([]);
    });

    test("after authentication a bad frame is answered, not fatal", () => {
      const h = harness(makeStores);
      const conn = h.daemon("m1", 1);
      h.send(conn, "not json");
      h.send(conn, { type: "taskOutput", taskId: 7 });
      expect(conn.frames().map((f) => [f.type, f.code])).toEqual([
        ["error", "badMessage"],
        ["error", "badMessage"],
      ]);
      expect(conn.closed).toBeNull();
      h.spawn("t1");
      expect(taskIdsIn(conn)).toEqual(["t1"]);
    });

    test("binary frames: fatal before authentication, an error frame after", () => {
      const h = harness(makeStores);
      const pre = h.open();
      h.relay.daemonBinary(pre);
      expect(pre.frames()[0]).toMatchObject({ type: "error", code: "badMessage" });
      expect(pre.closed?.code).toBe(4401);
      const post = h.daemon("m1", 1);
      h.relay.daemonBinary(post);
      expect(post.frames()[0]).toMatchObject({ type: "error", code: "badMessage" });
      expect(post.closed).toBeNull();
    });
  });

  describe("dispatch and queue", () => {
    test("least-loaded across two daemons with different capacities, ties to the longest waiting", () => {
      const h = harness(makeStores);
      const a = h.daemon("ma", 2);
      const b = h.daemon("mb", 3);
      const texts = ["t1", "t2", "t3", "t4", "t5", "t6"].map((t) => h.spawn(t));
      expect(taskIdsIn(a)).toEqual(["t1", "t3"]);
      expect(taskIdsIn(b)).toEqual(["t2", "t4", "t5"]);
      expect(h.relay.tasks.queuedIds()).toEqual(["t6"]);
      // The spawn frame is forwarded byte for byte.
      expect(a.sent[0]).toBe(texts[0] as string);
      expect(b.sent[0]).toBe(texts[1] as string);
      expect(h.status("t1")).toBe("dispatched");
      expect(h.stores.tasks.get("t2")?.dispatchedTo).toBe("d2");
      expect(h.stores.tasks.get("t2")?.machineId).toBe("mb");
      expect(h.status("t6")).toBe("pending");
      expect(h.relay.stats.dispatchedTotal).toBe(5);
    });

    test("queue is FIFO while full; a taskComplete frees the slot for the next one", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 1);
      for (const t of ["t1", "t2", "t3"]) h.spawn(t);
      expect(taskIdsIn(d)).toEqual(["t1"]);
      expect(h.relay.tasks.queuedIds()).toEqual(["t2", "t3"]);

      const done = '{"type":"taskComplete","taskId":"t1","success":true,"extra":{"a":1.50}}';
      h.send(d, done);
      expect(h.forwarded).toEqual([{ text: done, critical: true }]);
      expect(taskIdsIn(d)).toEqual(["t1", "t2"]);
      expect(h.status("t1")).toBe("completed");

      h.send(d, { type: "taskComplete", taskId: "t2", success: false, error: "exit 1" });
      expect(taskIdsIn(d)).toEqual(["t1", "t2", "t3"]);
      expect(h.stores.tasks.get("t2")).toMatchObject({ status: "failed", error: "exit 1" });
      expect(h.relay.tasks.queued).toBe(0);
    });

    test("queued tasks go out, in order, when a daemon connects", () => {
      const h = harness(makeStores);
      for (const t of ["t1", "t2", "t3"]) h.spawn(t);
      expect(h.relay.tasks.queuedIds()).toEqual(["t1", "t2", "t3"]);
      expect(h.relay.tasks.heartbeatTasks().sort()).toEqual(["t1", "t2", "t3"]);
      const conn = h.open();
      h.send(conn, h.authFrame("m1", 2));
      expect(conn.types()).toEqual(["authenticated", "spawnTask", "spawnTask"]);
      expect(taskIdsIn(conn)).toEqual(["t1", "t2"]);
      expect(h.relay.tasks.queuedIds()).toEqual(["t3"]);
    });

    test("duplicate spawnTask is dispatched once", () => {
      const h = harness(makeStores);
      for (const t of ["t1", "t1"]) h.spawn(t);
      expect(h.relay.tasks.queuedIds()).toEqual(["t1"]);
      const d = h.daemon("m1", 5);
      expect(taskIdsIn(d)).toEqual(["t1"]);
      h.spawn("t1");
      expect(taskIdsIn(d)).toEqual(["t1"]);
      expect(h.stores.tasks.get("t1")?.attempts).toBe(1);
      expect(h.stores.tasks.totalReceived()).toBe(1);
    });

    test("spawn for an ended task is a new attempt", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 5);
      h.spawn("t1");
      h.send(d, { type: "taskComplete", taskId: "t1", success: false, error: "x" });
      expect(h.status("t1")).toBe("failed");
      h.spawn("t1");
      expect(taskIdsIn(d)).toEqual(["t1", "t1"]);
      expect(h.stores.tasks.get("t1")).toMatchObject({
        status: "dispatched",
        attempts: 2,
        error: null,
      });
      expect(h.stores.tasks.totalReceived()).toBe(1);
    });

    test("backpressure: the daemon gets nothing more until it drains", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 5);
      d.results.push("backpressure");
      h.spawn("t1");
      h.spawn("t2");
      expect(taskIdsIn(d)).toEqual(["t1"]);
      expect(h.relay.tasks.queuedIds()).toEqual(["t2"]);
      h.relay.daemonDrained(d);
      expect(taskIdsIn(d)).toEqual(["t1", "t2"]);
    });

    test("a spawn the socket dropped is never run elsewhere: its daemon's reattach settles it", () => {
      const h = harness(makeStores);
      h.spawn("t0");
      h.spawn("t1");
      const conn = h.open();
      conn.results.push("sent", "dropped"); // authenticated goes out, then the socket dies
      h.send(conn, h.authFrame("m1", 5));
      // t0 counts as dispatched to m1; m1 gets nothing more until it drains or goes away.
      expect(h.status("t0")).toBe("dispatched");
      expect(h.relay.tasks.queuedIds()).toEqual(["t1"]);
      const other = h.daemon("m2", 5);
      expect(taskIdsIn(other)).toEqual(["t1"]);
      conn.close(1006, "gone");
      const back = h.daemon("m1", 5);
      h.send(back, { type: "heartbeat", activeTasks: [] });
      expect(h.status("t0")).toBe("lost");
      expect(h.forwarded.map((f) => JSON.parse(f.text))).toContainEqual({
        type: "taskComplete",
        taskId: "t0",
        success: false,
        error: "daemon lost",
      });
    });

    test("capacityUpdate changes the slot count, dispatches, and is never forwarded", () => {
      const h = harness(makeStores);
      const d = h.daemon("child", 0, { role: "relay" });
      h.spawn("t1");
      h.spawn("t2");
      expect(d.sent).toEqual([]);
      h.send(d, { type: "capacityUpdate", maxConcurrentTasks: 1 });
      expect(taskIdsIn(d)).toEqual(["t1"]);
      h.send(d, { type: "capacityUpdate", maxConcurrentTasks: 5 });
      expect(taskIdsIn(d)).toEqual(["t1", "t2"]);
      expect(h.forwarded).toEqual([]);
    });
  });

  describe("control commands", () => {
    test("routed to the daemon that holds the task, byte for byte", () => {
      const h = harness(makeStores);
      const a = h.daemon("ma", 1);
      const b = h.daemon("mb", 1);
      h.spawn("t1");
      h.spawn("t2");
      a.clear();
      b.clear();
      const pause = control("pauseTask", "t2", ',"why":  "user"');
      const msg = control("sendMessage", "t1", ',"message":"hi ☃"');
      const interrupt = control("interruptTask", "t1");
      h.server(pause);
      h.server(msg);
      h.server(interrupt);
      expect(b.sent).toEqual([pause]);
      expect(a.sent).toEqual([msg, interrupt]);
      expect(h.status("t1")).toBe("dispatched"); // interrupting a running task is the daemon's job
    });

    test("a command for an unknown or ended task reaches nobody", () => {
      const h = harness(makeStores);
      const a = h.daemon("ma", 1);
      h.server(control("pauseTask", "ghost"));
      h.spawn("t1");
      h.send(a, { type: "taskComplete", taskId: "t1", success: true });
      a.clear();
      h.server(control("resumeTask", "t1"));
      expect(a.sent).toEqual([]);
      expect(h.log.events("warning").length).toBe(2);
    });

    test("commands for a queued task wait and are delivered, in order, right after its spawnTask", () => {
      const h = harness(makeStores);
      h.spawn("t1");
      const cmds = [
        control("pauseTask", "t1"),
        control("sendMessage", "t1", ',"m":1'),
        control("resumeTask", "t1"),
      ];
      for (const c of cmds) h.server(c);
      const conn = h.open();
      h.send(conn, h.authFrame("m1", 1));
      expect(conn.sent.slice(1)).toEqual([spawnText("t1"), ...cmds]);
      expect(h.stores.tasks.heldCommands("t1")).toEqual([]);
      // Later commands go straight through.
      const later = control("pauseTask", "t1", ',"n":2');
      h.server(later);
      expect(conn.sent.at(-1)).toBe(later);
    });

    test("interruptTask for a queued task cancels it and tells upstream", () => {
      const h = harness(makeStores);
      h.spawn("t1");
      h.spawn("t2");
      h.server(control("pauseTask", "t1"));
      h.server(control("interruptTask", "t1"));
      expect(h.status("t1")).toBe("cancelled");
      expect(h.relay.tasks.queuedIds()).toEqual(["t2"]);
      expect(h.relay.tasks.heartbeatTasks()).toEqual(["t2"]);
      expect(h.forwarded).toEqual([
        {
          text: JSON.stringify({
            type: "taskComplete",
            taskId: "t1",
            success: false,
            error: "interrupted before dispatch",
          }),
          critical: true,
        },
      ]);
      const d = h.daemon("m1", 5);
      expect(d.sent).toEqual([spawnText("t2")]); // neither t1 nor its waiting pause
    });
  });

  describe("server frames and daemon frames", () => {
    test("an unknown server type is broadcast to every authenticated daemon", () => {
      const h = harness(makeStores);
      const a = h.daemon("ma", 1);
      const b = h.daemon("mb", 1);
      const pending = h.open();
      const text = '{"type":"announcement","text":"maintenance at 5",  "n":1.0}';
      h.server(text);
      expect(a.sent).toEqual([text]);
      expect(b.sent).toEqual([text]);
      expect(pending.sent).toEqual([]);
    });

    test("the server's own authenticated and unreadable frames reach nobody", () => {
      const h = harness(makeStores);
      const a = h.daemon("ma", 1);
      h.server({ type: "authenticated", daemonId: "x" });
      h.server("garbage");
      h.server({ type: "spawnTask" });
      expect(a.sent).toEqual([]);
      expect(h.relay.stats.framesFromServer).toBe(3);
    });

    test("daemon frames about its own tasks are forwarded byte for byte, critical where it matters", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 2);
      h.spawn("t1");
      const frames: [string, boolean][] = [
        ['{"type":"taskOutput","taskId":"t1","output":"a\\nb","seq":1.0}', false],
        ['{"type":"taskProgress", "taskId":"t1","percent":50}', false],
        [
          '{"type":"taskStatusChange","taskId":"t1","oldStatus":"starting","newStatus":"running","x":{}}',
          true,
        ],
        ['{"type":"daemonLog","level":"info","line":"ok"}', false],
        ['{"type":"taskComplete","taskId":"t1","success":true,"result":{"k":[1,2]}}', true],
      ];
      for (const [text] of frames) h.send(d, text);
      expect(h.forwarded).toEqual(frames.map(([text, critical]) => ({ text, critical })));
      expect(h.stores.tasks.get("t1")?.lastReportedStatus).toBe("running");
      expect(h.status("t1")).toBe("completed");
      expect(taskIdsIn(d, "error")).toEqual([]);
    });

    test("heartbeat, capacityUpdate and authenticate are never forwarded", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 2);
      h.send(d, { type: "heartbeat", activeTasks: [] });
      h.send(d, { type: "capacityUpdate", maxConcurrentTasks: 3 });
      h.send(d, h.authFrame("m1", 2));
      expect(h.forwarded).toEqual([]);
    });

    test("notYourTask for another daemon's task and for unknown tasks; nothing forwarded", () => {
      const h = harness(makeStores);
      const a = h.daemon("ma", 1);
      const b = h.daemon("mb", 1);
      h.spawn("t1"); // → a
      const cases: Json[] = [
        { type: "taskOutput", taskId: "t1", output: "x" },
        { type: "taskComplete", taskId: "t1", success: true },
        { type: "taskStatusChange", taskId: "t1", newStatus: "running" },
        { type: "taskOutput", taskId: "ghost" },
        { type: "taskComplete", taskId: "ghost", success: false },
      ];
      for (const f of cases) h.send(b, f);
      expect(b.frames().map((f) => [f.type, f.code])).toEqual(
        cases.map(() => ["error", "notYourTask"]),
      );
      expect(b.closed).toBeNull();
      expect(h.forwarded).toEqual([]);
      expect(h.status("t1")).toBe("dispatched");
      expect(h.stores.tasks.get("t1")?.lastReportedStatus).toBeNull();
      // The holder itself is still fine.
      h.send(a, { type: "taskOutput", taskId: "t1" });
      expect(h.forwarded.length).toBe(1);
    });

    test("a task that ended is no longer the daemon's", () => {
      const h = harness(makeStores);
      const a = h.daemon("ma", 1);
      h.spawn("t1");
      h.send(a, { type: "taskComplete", taskId: "t1", success: true });
      a.clear();
      h.send(a, { type: "taskOutput", taskId: "t1" });
      expect(a.frames()[0]).toMatchObject({ type: "error", code: "notYourTask" });
      expect(h.forwarded.length).toBe(1);
    });
  });

  describe("daemons that go away", () => {
    test("close → grace → lost, and upstream gets taskComplete 'daemon lost'", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 2);
      h.spawn("t1");
      h.spawn("t2");
      h.send(d, { type: "taskComplete", taskId: "t2", success: true });
      h.forwarded.length = 0;
      d.close(1006, "");
      expect(h.relay.registry.size).toBe(0);
      expect(h.status("t1")).toBe("dispatched");
      expect(h.relay.tasks.heartbeatTasks()).toEqual(["t1"]); // still held, from upstream's view
      h.clock.advance(GRACE - 1);
      expect(h.status("t1")).toBe("dispatched");
      expect(h.forwarded).toEqual([]);
      h.clock.advance(1);
      expect(h.stores.tasks.get("t1")).toMatchObject({ status: "lost", error: "daemon lost" });
      expect(h.forwarded).toEqual([
        {
          text: JSON.stringify({
            type: "taskComplete",
            taskId: "t1",
            success: false,
            error: "daemon lost",
          }),
          critical: true,
        },
      ]);
      expect(h.relay.tasks.heartbeatTasks()).toEqual([]);
      expect(h.relay.stats.lostTasks).toBe(1);
      expect(h.status("t2")).toBe("completed");
    });

    test("a closed daemon's queued work goes to the others at once", () => {
      const h = harness(makeStores);
      const a = h.daemon("ma", 1);
      h.spawn("t1");
      h.spawn("t2");
      const b = h.daemon("mb", 1);
      expect(taskIdsIn(b)).toEqual(["t2"]);
      h.spawn("t3");
      a.close(1006, "");
      expect(taskIdsIn(b)).toEqual(["t2"]); // b is full; t1 is not re-run elsewhere
      expect(h.relay.tasks.queuedIds()).toEqual(["t3"]);
      expect(h.status("t1")).toBe("dispatched");
    });

    test("reattach within grace: tasks come back and waiting commands arrive in order", () => {
      const h = harness(makeStores);
      const d1 = h.daemon("m1", 2);
      h.spawn("t1");
      h.spawn("t2");
      d1.close(1006, "");
      h.clock.advance(GRACE / 2);
      const waiting = [
        control("pauseTask", "t1"),
        control("sendMessage", "t2", ',"m":"x"'),
        control("resumeTask", "t1"),
      ];
      for (const c of waiting) h.server(c);
      expect(h.stores.tasks.heldCommands("t1").length).toBe(2);

      const d2 = h.open();
      h.send(d2, h.authFrame("m1", 2));
      expect(d2.types()[0]).toBe("authenticated");
      const delivered = d2.sent.slice(1);
      expect(delivered.filter((s) => s.includes('"t1"'))).toEqual([
        waiting[0] as string,
        waiting[2] as string,
      ]);
      expect(delivered.filter((s) => s.includes('"t2"'))).toEqual([waiting[1] as string]);
      expect(delivered.length).toBe(3);
      expect(h.relay.registry.get(d2.id)?.holds).toEqual(new Set(["t1", "t2"]));

      h.clock.advance(GRACE);
      expect(h.status("t1")).toBe("dispatched");
      h.send(d2, { type: "taskComplete", taskId: "t1", success: true });
      expect(h.status("t1")).toBe("completed");
      expect(h.forwarded.map((f) => f.text)).not.toContain(
        JSON.stringify({
          type: "taskComplete",
          taskId: "t1",
          success: false,
          error: "daemon lost",
        }),
      );
    });

    test("replacement by the same machineId: old closed with 4409, tasks move", () => {
      const h = harness(makeStores);
      const old = h.daemon("m1", 2);
      h.spawn("t1");
      const fresh = h.open();
      h.send(fresh, h.authFrame("m1", 2));
      expect(old.closed).toEqual({ code: 4409, reason: expect.any(String) });
      expect(fresh.closed).toBeNull();
      expect(h.relay.registry.size).toBe(1);
      expect(h.relay.registry.byMachineId("m1")?.conn).toBe(fresh);
      expect(h.relay.registry.get(fresh.id)?.holds).toEqual(new Set(["t1"]));
      // Nothing went into a grace period, so nothing is lost later.
      h.clock.advance(GRACE * 2);
      expect(h.status("t1")).toBe("dispatched");
      h.server(control("pauseTask", "t1"));
      expect(fresh.sent.at(-1)).toBe(control("pauseTask", "t1"));
      h.send(fresh, { type: "taskComplete", taskId: "t1", success: true });
      expect(h.status("t1")).toBe("completed");
    });

    test("reconciliation: the first heartbeat after reattach settles earlier tasks", () => {
      const h = harness(makeStores);
      const d1 = h.daemon("m1", 5);
      for (const t of ["t1", "t2", "t3"]) h.spawn(t);
      d1.close(1006, "");
      const d2 = h.daemon("m1", 5);
      // Read without a pause for long enough: t4's omissions count from the first heartbeat.
      h.clock.advance(RECONCILE_SETTLE_MS);
      h.spawn("t4"); // dispatched after the reattach: not subject to the first-heartbeat rule
      expect(taskIdsIn(d2)).toEqual(["t4"]);
      h.send(d2, { type: "taskComplete", taskId: "t3", success: true });
      h.forwarded.length = 0;

      // A malformed heartbeat does not count.
      h.send(d2, { type: "heartbeat", activeTasks: "t2" });
      expect(h.status("t1")).toBe("dispatched");

      h.send(d2, { type: "heartbeat", activeTasks: ["t2"] });
      expect(h.stores.tasks.get("t1")).toMatchObject({ status: "lost", error: "daemon lost" });
      expect(h.status("t2")).toBe("dispatched");
      expect(h.status("t3")).toBe("completed");
      expect(h.status("t4")).toBe("dispatched");
      expect(h.forwarded).toEqual([
        {
          text: JSON.stringify({
            type: "taskComplete",
            taskId: "t1",
            success: false,
            error: "daemon lost",
          }),
          critical: true,
        },
      ]);
      // Only the first one settles earlier tasks: t2 missing once more is one omission, not a loss.
      // t4 (sent after the reattach) is now missing from two heartbeats in a row: forgotten.
      h.send(d2, { type: "heartbeat", activeTasks: [] });
      expect(h.status("t2")).toBe("dispatched");
      expect(h.status("t4")).toBe("lost");
    });

    test("reconciliation while connected: lost after two consecutive heartbeats without it", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 1);
      h.spawn("t1");
      h.spawn("t2"); // queued behind t1
      expect(taskIdsIn(d)).toEqual(["t1"]);
      h.send(d, { type: "heartbeat", activeTasks: [] });
      expect(h.status("t1")).toBe("dispatched");
      // Listed again: the count starts over.
      h.send(d, { type: "heartbeat", activeTasks: ["t1"] });
      h.send(d, { type: "heartbeat", activeTasks: [] });
      expect(h.status("t1")).toBe("dispatched");
      h.forwarded.length = 0;
      h.send(d, { type: "heartbeat", activeTasks: [] });
      expect(h.stores.tasks.get("t1")).toMatchObject({ status: "lost", error: "daemon lost" });
      expect(h.forwarded.map((f) => JSON.parse(f.text))).toEqual([
        { type: "taskComplete", taskId: "t1", success: false, error: "daemon lost" },
      ]);
      // The slot is free again: the queued task goes to the same daemon.
      expect(taskIdsIn(d)).toEqual(["t1", "t2"]);
      expect(h.relay.registry.byMachineId("m1")?.holds).toEqual(new Set(["t2"]));
    });

    test("heartbeats that waited in a paused socket are not omissions: the task counts once listed, or once reading has settled", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 2);
      // Just authenticated (or just resumed): heartbeats read now may predate the spawnTask.
      h.spawn("t1");
      h.send(d, { type: "heartbeat", activeTasks: [] });
      h.send(d, { type: "heartbeat", activeTasks: [] });
      h.send(d, { type: "heartbeat", activeTasks: [] });
      expect(h.status("t1")).toBe("dispatched");
      // Once the socket has been read without a pause for RECONCILE_SETTLE_MS, omissions count.
      h.clock.advance(RECONCILE_SETTLE_MS);
      h.send(d, { type: "heartbeat", activeTasks: [] });
      expect(h.status("t1")).toBe("dispatched");
      h.send(d, { type: "heartbeat", activeTasks: [] });
      expect(h.status("t1")).toBe("lost");
      // A task the daemon has listed counts at once.
      h.spawn("t2");
      h.send(d, { type: "heartbeat", activeTasks: ["t2"] });
      h.send(d, { type: "heartbeat", activeTasks: [] });
      h.send(d, { type: "heartbeat", activeTasks: [] });
      expect(h.status("t2")).toBe("lost");
    });

    test("a fresh daemon's first heartbeat loses nothing", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 5);
      h.spawn("t1");
      h.send(d, { type: "heartbeat", activeTasks: [] });
      expect(h.status("t1")).toBe("dispatched");
    });

    test("a silent daemon is closed with 4408 by the sweep; a talking one is not", () => {
      const h = harness(makeStores);
      h.relay.start();
      const quiet = h.daemon("mq", 1);
      const chatty = h.daemon("mc", 1);
      h.spawn("t1"); // → quiet
      for (let elapsed = 0; elapsed < DAEMON_TIMEOUT + 2000; elapsed += 10_000) {
        h.send(chatty, { type: "heartbeat", activeTasks: [] });
        h.clock.advance(10_000);
      }
      expect(quiet.closed?.code).toBe(4408);
      expect(chatty.closed).toBeNull();
      expect(h.relay.registry.size).toBe(1);
      // Its task waits out the grace period like any other disconnect.
      expect(h.status("t1")).toBe("dispatched");
      h.clock.advance(GRACE);
      expect(h.status("t1")).toBe("lost");
      h.relay.stop();
    });

    test("not closed one sweep before the liveness timeout", () => {
      const h = harness(makeStores);
      h.relay.start();
      const d = h.daemon("m1", 1);
      h.clock.advance(DAEMON_TIMEOUT - 1000);
      expect(d.closed).toBeNull();
      h.clock.advance(2000);
      expect(d.closed?.code).toBe(4408);
      h.relay.stop();
    });

    test("stop closes every socket with 1001 and starts no grace period", () => {
      const h = harness(makeStores);
      h.relay.start();
      const d = h.daemon("m1", 1);
      const pending = h.open();
      h.spawn("t1");
      h.relay.stop();
      expect(d.closed?.code).toBe(1001);
      expect(pending.closed?.code).toBe(1001);
      expect(h.relay.registry.size).toBe(0);
      h.clock.advance(GRACE * 2);
      expect(h.status("t1")).toBe("dispatched"); // kept for the next start
      expect(h.forwarded).toEqual([]);
    });

    test("daemonClosed is idempotent", () => {
      const h = harness(makeStores);
      const d = h.daemon("m1", 1);
      h.spawn("t1");
      d.close(1006, "");
      h.relay.daemonClosed(d, 1006, "");
      h.clock.advance(GRACE);
      expect(h.forwarded.length).toBe(1);
    });
  });
});

describe("TaskBook.restore", () => {
  test("pending tasks queue in FIFO order; dispatched ones wait out the grace period", () => {
    const first = harness(() => createMemoryStores());
    const d = first.daemon("m1", 1);
    for (const t of ["t1", "t2", "t3"]) first.spawn(t);
    expect(taskIdsIn(d)).toEqual(["t1"]);

    // A new relay over the same stores (a restart).
    const stores = first.stores;
    const h = harness(() => stores);
    h.relay.start();
    expect(h.relay.tasks.queuedIds()).toEqual(["t2", "t3"]);
    expect(h.relay.tasks.heartbeatTasks().sort()).toEqual(["t1", "t2", "t3"]);

    const back = h.daemon("m1", 3);
    expect(taskIdsIn(back)).toEqual(["t2", "t3"]);
    expect(h.relay.registry.get(back.id)?.holds).toEqual(new Set(["t1", "t2", "t3"]));
    h.clock.advance(GRACE);
    expect(h.status("t1")).toBe("dispatched");
    h.relay.stop();
  });

  test("a dispatched task whose machine never returns is lost after the grace period", () => {
    const first = harness(() => createMemoryStores());
    first.daemon("m1", 1);
    first.spawn("t1");
    const stores = first.stores;
    const h = harness(() => stores);
    h.relay.start();
    h.clock.advance(GRACE);
    expect(h.status("t1")).toBe("lost");
    expect(h.forwarded.map((f) => JSON.parse(f.text).error)).toEqual(["daemon lost"]);
    h.relay.stop();
  });
});

/** A socket that records pause()/resume() the way Bun's does: reading stops until resumed. */
function pausable(conn: FakeConnection, paused: Set<string>): FakeConnection {
  return Object.assign(conn, {
    pause: () => paused.add(conn.id),
    resume: () => paused.delete(conn.id),
  });
}

describe("Relay flow control", () => {
  test("pauses every daemon socket while upstream is congested and resumes after", () => {
    const h = harness(createMemoryStores);
    h.relay.start(); // the sweep runs: its liveness checks are live in this test
    const paused = new Set<string>();
    const a = pausable(h.daemon("a", 1), paused);
    h.relay.setInboundPaused(true);
    expect([...paused]).toEqual([a.id]);
    // A daemon admitted while congested starts paused too.
    const conn = pausable(h.open(), paused);
    h.send(conn, h.authFrame("b", 1));
    expect([...paused].sort()).toEqual([a.id, conn.id].sort());
    // No 4408 for daemons the relay could not read.
    h.clock.advance(DAEMON_TIMEOUT * 3);
    expect(a.closed).toBeNull();
    h.relay.setInboundPaused(false);
    expect(paused.size).toBe(0);
    h.clock.advance(DAEMON_TIMEOUT / 2);
    expect(a.closed).toBeNull();
    // Their clocks restarted at the resume: silent a full timeout after it, they are closed.
    h.clock.advance(DAEMON_TIMEOUT);
    expect(a.closed?.code).toBe(4408);
    h.relay.stop();
  });

  test("storage failing pauses every daemon and refuses new sockets; healthy again resumes", () => {
    const h = harness(createMemoryStores);
    const paused = new Set<string>();
    const a = pausable(h.daemon("a", 1), paused);
    const failing = {
      ok: false as const,
      code: "SQLITE_FULL",
      error: "database or disk is full",
      since: 0,
      attempts: 1,
      pendingWrites: 3,
    };
    h.relay.storageChanged(failing);
    expect([...paused]).toEqual([a.id]);
    expect(h.relay.readiness()).toEqual(["storage"]);
    expect(h.relay.connectionRefusal()).toContain("database");
    expect(h.log.events("storage_failing")).toHaveLength(1);
    // Retries that fail again are quiet until a minute has passed.
    h.relay.storageChanged({ ...failing, attempts: 2 });
    expect(h.log.events("storage_failing")).toHaveLength(1);
    expect(h.log.events("storage_still_failing")).toHaveLength(0);
    h.clock.advance(60_000);
    h.relay.storageChanged({ ...failing, attempts: 3 });
    expect(h.log.events("storage_still_failing")).toHaveLength(1);
    h.relay.storageChanged({ ok: true });
    expect(paused.size).toBe(0);
    expect(h.relay.readiness()).toEqual([]);
    expect(h.relay.connectionRefusal()).toBeNull();
    expect(h.log.events("storage_recovered")).toHaveLength(1);
    expect(h.relay.stats.failedCommits).toBe(3);
  });
});

describe("Relay rate limit: slow down, never drop", () => {
  const output = (taskId: string, i: number) =>
    `{"type":"taskOutput","taskId":"${taskId}","line":${i}}`;

  test("over its bucket a daemon is paused, every frame is still handled in order, and it resumes", () => {
    const h = harness(createMemoryStores, { daemonRate: 10, daemonBurst: 20 });
    const paused = new Set<string>();
    const d = pausable(h.daemon("m1", 1), paused);
    h.spawn("t1");
    h.forwarded.length = 0;
    for (let i = 0; i < 25; i++) h.send(d, output("t1", i));
    h.send(d, { type: "taskComplete", taskId: "t1", success: true });
    // Nothing dropped, nothing reordered; no error frame either.
    expect(h.forwarded.map((f) => f.text)).toEqual([
      ...Array.from({ length: 25 }, (_, i) => output("t1", i)),
      JSON.stringify({ type: "taskComplete", taskId: "t1", success: true }),
    ]);
    expect(d.types()).toEqual(["spawnTask"]);
    expect(h.status("t1")).toBe("completed");
    // Paused once the bucket ran dry (the 20th frame), and one log line for the episode.
    expect([...paused]).toEqual([d.id]);
    expect(h.log.events("daemon_throttled")).toHaveLength(1);
    expect(h.relay.stats).toMatchObject({ throttleEpisodes: 1, throttledNow: 1 });
    // 26 frames against a bucket of 20 at 10/s: 6 in debt; reading resumes once 1 token is back, at 700 ms.
    h.clock.advance(650);
    expect(paused.has(d.id)).toBe(true);
    h.clock.advance(50);
    expect(paused.size).toBe(0);
    expect(h.relay.stats.throttledNow).toBe(0);
  });

  test("a throttled daemon is never closed for silence, however long the throttle lasts", () => {
    const h = harness(createMemoryStores, { daemonRate: 1, daemonBurst: 2 });
    h.relay.start();
    const paused = new Set<string>();
    const d = pausable(h.daemon("m1", 1), paused);
    h.spawn("t1");
    // 200 frames at 1 frame/s: about 200 s of debt, more than twice the liveness timeout.
    for (let i = 0; i < 200; i++) h.send(d, output("t1", i));
    expect(paused.has(d.id)).toBe(true);
    h.clock.advance(DAEMON_TIMEOUT * 2);
    expect(d.closed).toBeNull();
    expect(paused.has(d.id)).toBe(true);
    h.clock.advance(20_000);
    expect(paused.size).toBe(0);
    h.clock.advance(DAEMON_TIMEOUT / 2);
    expect(d.closed).toBeNull();
    h.relay.stop();
  });

  test("throttlings less than a second apart are one episode; a later one is a new episode", () => {
    const h = harness(createMemoryStores, { daemonRate: 10, daemonBurst: 2 });
    const paused = new Set<string>();
    const d = pausable(h.daemon("m1", 1), paused);
    const flood = () => {
      for (let i = 0; i < 3; i++) h.send(d, { type: "heartbeat", activeTasks: [] });
    };
    flood();
    h.clock.advance(500);
    expect(paused.size).toBe(0);
    flood();
    expect(h.relay.stats.throttleEpisodes).toBe(1);
    h.clock.advance(5_000);
    flood();
    expect(h.relay.stats.throttleEpisodes).toBe(2);
    expect(h.log.events("daemon_throttled")).toHaveLength(2);
  });

  test("a child relay (role relay) is never throttled", () => {
    const h = harness(createMemoryStores, { daemonRate: 1, daemonBurst: 2 });
    const paused = new Set<string>();
    const child = pausable(h.daemon("child", 1, { role: "relay" }), paused);
    for (let i = 0; i < 50; i++) h.send(child, { type: "heartbeat", activeTasks: [] });
    expect(paused.size).toBe(0);
    expect(h.relay.stats.throttleEpisodes).toBe(0);
  });
});

describe("waiting commands behind a write batch", () => {
  test("a command whose send waited for a commit and was dropped goes back ahead of commands that began waiting after it", () => {
    const batch = createWriteBatch(
      { begin() {}, commit() {}, rollback() {} },
      { clock: new ManualClock(), schedule: () => {} },
    );
    const h = harness(() => createMemoryStores(batch));
    const connect = (): FakeConnection => {
      const conn = h.open();
      h.send(conn, h.authFrame("m1", 1));
      batch.flush();
      return conn;
    };
    const d = connect();
    h.spawn("t1");
    batch.flush();
    expect(taskIdsIn(d)).toEqual(["t1"]);
    // A command waits for the turn's commit (a spawn queued behind t1 wrote something); the
    // daemon's socket closes first, so its send is dropped; meanwhile (the daemon away) a
    // later command waits.
    h.spawn("t2");
    h.server(control("sendMessage", "t1", ',"n":1'));
    d.close(1006, "");
    h.server(control("interruptTask", "t1", ',"n":2'));
    batch.flush();
    const back = connect();
    expect(
      back
        .frames()
        .filter((f) => f.taskId === "t1")
        .map((f) => [f.type, f.n]),
    ).toEqual([
      ["sendMessage", 1],
      ["interruptTask", 2],
    ]);
    expect(h.stores.tasks.heldCommands("t1")).toEqual([]);
  });
});
