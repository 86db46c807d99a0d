/**
 * Storage failures (docs/protocol.md), the locked-file case: another process
 * (here a second bun:sqlite connection) holds the database's write lock. The
 * relay's commits fail with SQLITE_BUSY; it must send nothing that depends on
 * them, read neither side meanwhile, say so on /ready, and carry on in order
 * once the lock is released.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { isSpawn } from "../helpers/frames.ts";
import { startLinked } from "../helpers/linked.ts";
import { metric, pollUntil, ready } from "../helpers/probes.ts";

interface StorageView {
  ok: boolean;
  code: string | null;
  attempts: number;
}

test("a database locked by another connection holds back the spawnTask until the lock is released; nothing is lost", async () => {
  await using stage = await startLinked({ machineId: "worker", maxConcurrentTasks: 3 });
  const { server, relay, d } = stage;
  server.spawnTask("before");
  await d.waitFor(isSpawn("before"));

  using intruder = new Database(relay.dbPath);
  intruder.run("BEGIN IMMEDIATE");
  let locked = true;
  try {
    const spawn = server.spawnTask("during", "written while locked", { payload: "p" });
    const failing = await relay.logs.waitFor((l) => l.event === "storage_failing", 5000);
    expect(failing).toMatchObject({ code: "SQLITE_BUSY" });
    const notReady = await ready(relay);
    expect({ status: notReady.status, storage: notReady.reasons.includes("storage") }).toEqual({
      status: 503,
      storage: true,
    });
    expect(await metric(relay, "makima_relay_storage_ok")).toBe(0);

    // More traffic on both sides while locked: it waits in TCP, in order.
    const control = server.sendMessage("during", "hello while locked");
    const second = server.spawnTask("during-2");
    const sentUp = [d.taskOutput("before", "out while locked"), d.complete("before", true)];

    // Several retries later the spawn still has not left: its dispatch is not committed.
    const status = await pollUntil(
      () => relay.json<{ storage: StorageView }>("/status"),
      (s) => s.storage.attempts >= 3,
      5000,
    );
    expect(status.storage).toMatchObject({ ok: false, code: "SQLITE_BUSY" });
    expect(d.framesOfType("spawnTask").map((f) => f.msg.taskId)).toEqual(["before"]);
    expect(d.received.some((f) => f.raw === control)).toBe(false);
    expect(server.received.some((f) => sentUp.includes(f.raw))).toBe(false);

    intruder.run("ROLLBACK");
    locked = false;
    await relay.logs.waitFor((l) => l.event === "storage_recovered", 5000);
    await d.waitFor((f) => f.raw === control, 5000);
    await d.waitFor(isSpawn("during-2"), 5000);
    await server.waitFor((f) => f.raw === sentUp.at(-1), 5000);

    // Each frame once, in the order it was sent.
    expect(d.received.filter((f) => f.msg?.taskId?.startsWith("during")).map((f) => f.raw)).toEqual(
      [spawn, control, second],
    );
    expect(server.received.filter((f) => f.msg?.taskId === "before").map((f) => f.raw)).toEqual(
      sentUp,
    );
    expect(await ready(relay)).toEqual({ status: 200, ready: true, reasons: [] });
    expect(await relay.json("/tasks/during")).toMatchObject({
      status: "dispatched",
      machineId: "worker",
    });
    expect(await relay.json("/tasks/before")).toMatchObject({ status: "completed" });
  } finally {
    if (locked) intruder.run("ROLLBACK");
  }
}, 15_000);
