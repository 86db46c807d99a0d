/**
 * A frame naming `taskId` (or `type`) twice, over real sockets. JSON.parse
 * keeps the last key and the relay forwards the text unchanged, so without the
 * rule daemon B could pass the ownership check with its own task named last
 * while a server that keeps the first key reads daemon A's task. Such a frame
 * gets badMessage and goes nowhere (protocol.md, "Frames").
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import {
  connectSimDaemon,
  type SimDaemon,
  type SimServer,
  startSimServer,
} from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";

let server: SimServer;
let relay: TestRelay;
let upstreamConn = "";
let a: SimDaemon;
let b: SimDaemon;
const daemons: SimDaemon[] = [];

async function daemon(machineId: string, capacity: number, auth = true): Promise<SimDaemon> {
  const d = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId,
    maxConcurrentTasks: capacity,
    autoAuthenticate: auth,
  });
  daemons.push(d);
  if (auth) await d.authenticated;
  return d;
}

const spawnOf = (taskId: string) => (f: { msg?: { type?: string; taskId?: string } }) =>
  f.msg?.type === "spawnTask" && f.msg.taskId === taskId;

/** Two daemons, one task each: A holds task-a, B holds task-b. */
beforeEach(async () => {
  server = startSimServer();
  relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
  upstreamConn = (await server.waitForConnection()).connId;
  a = await daemon("daemon-a", 1);
  server.spawnTask("task-a", "A's task", {}, upstreamConn);
  await a.waitFor(spawnOf("task-a"));
  b = await daemon("daemon-b", 1);
  server.spawnTask("task-b", "B's task", {}, upstreamConn);
  await b.waitFor(spawnOf("task-b"));
});

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.close().catch(() => {});
  await relay[Symbol.asyncDispose]();
  await server.stop();
});

const taskStatus = async (taskId: string) =>
  (await relay.json<{ status: string; machineId: string }>(`/tasks/${taskId}`)).status;

const attacks: Array<[string, string, string]> = [
  [
    "taskOutput naming A's task first and B's last",
    '{"type":"taskOutput","taskId":"task-a","output":"forged","taskId":"task-b"}',
    "taskId",
  ],
  [
    "taskComplete naming A's task first and B's last",
    '{"type":"taskComplete","taskId":"task-a","success":false,"error":"forged","taskId":"task-b"}',
    "taskId",
  ],
  [
    "taskStatusChange naming A's task first and B's last",
    '{"type":"taskStatusChange","taskId":"task-a","oldStatus":"running","newStatus":"failed","taskId":"task-b"}',
    "taskId",
  ],
  [
    "the second taskId spelled with an escape",
    '{"type":"taskOutput","taskId":"task-a","output":"forged","ta\\u0073kId":"task-b"}',
    "taskId",
  ],
  [
    "taskId twice around nested braces and escaped quotes",
    '{"type":"taskOutput","taskId":"task-a","meta":{"s":"}\\"]","taskId":"x"},"taskId":"task-b"}',
    "taskId",
  ],
  [
    "type twice: a taskComplete first, the output the relay would see last",
    '{"type":"taskComplete","taskId":"task-b","success":true,"type":"taskOutput","output":"x"}',
    "type",
  ],
];

test.each(attacks)("daemon B: %s → badMessage, never forwarded", async (_name, attack, field) => {
  // The relay alone would accept it: JSON.parse sees B's own task (or an output) last.
  expect(JSON.parse(attack).taskId).toBe("task-b");
  b.sendRaw(attack);
  const err = await b.waitFor((f) => f.msg?.type === "error");
  expect(err.msg).toEqual({
    type: "error",
    code: "badMessage",
    message: `duplicate field "${field}": a frame may name it only once`,
  });
  // The connection carries on; B's next frame goes through, and frames from B arrive in order,
  // so once it has arrived the attack frame would have too.
  const after = b.taskOutput("task-b", "after the attack");
  await server.waitFor((f) => f.raw === after);
  expect(server.received.filter((f) => f.raw === attack)).toEqual([]);
  expect(b.closed).toBeUndefined();
  // Nothing changed at the relay either: both tasks are still where they were.
  expect([await taskStatus("task-a"), await taskStatus("task-b")]).toEqual([
    "dispatched",
    "dispatched",
  ]);
});

test("before authenticate: a frame naming type twice gets badMessage and 4401", async () => {
  const d = await daemon("sneaky", 1, false);
  // JSON.parse reads an authenticate with a valid key; a first-key reader, a taskOutput.
  const frame = `{"type":"taskOutput","taskId":"task-a","type":"authenticate","apiKey":"${TEST_KEY}","machineId":"sneaky","hostname":"h","maxConcurrentTasks":1}`;
  d.sendRaw(frame);
  const err = await d.waitFor((f) => f.msg?.type === "error");
  expect(err.msg).toMatchObject({ code: "badMessage", message: expect.stringContaining('"type"') });
  expect((await d.waitForClose()).code).toBe(4401);
  expect(d.received.some((f) => f.msg?.type === "authenticated")).toBe(false);
  const { daemons: listed } = await relay.json<{ daemons: { machineId: string }[] }>("/daemons");
  expect(listed.map((x) => x.machineId).sort()).toEqual(["daemon-a", "daemon-b"]);
});

test("from the server: a spawnTask naming two tasks is logged and not dispatched", async () => {
  const c = await daemon("daemon-c", 2);
  const frame = '{"type":"spawnTask","taskId":"dup-1","taskName":"n","taskId":"dup-2"}';
  server.send(frame, upstreamConn);
  const logged = await relay.logs.waitFor(
    (l) => l.event === "error" && String(l.details).includes('duplicate field "taskId"'),
  );
  expect(logged.level).toBe("warn");
  // The server's next spawnTask is the first one C sees.
  server.spawnTask("after-dup", "after", {}, upstreamConn);
  await c.waitFor(spawnOf("after-dup"));
  expect(c.framesOfType("spawnTask").map((f) => f.msg.taskId)).toEqual(["after-dup"]);
  for (const id of ["dup-1", "dup-2"]) expect((await relay.get(`/tasks/${id}`)).status).toBe(404);
});

test("from the server: an interruptTask naming two tasks reaches no daemon", async () => {
  server.send('{"type":"interruptTask","taskId":"elsewhere","taskId":"task-a"}', upstreamConn);
  await relay.logs.waitFor(
    (l) => l.event === "error" && String(l.details).includes('duplicate field "taskId"'),
  );
  // Commands for one task are delivered in order: once the next one is there, the first would be.
  server.sendMessage("task-a", "after the duplicate", upstreamConn);
  await a.waitFor((f) => f.msg?.type === "sendMessage" && f.msg.taskId === "task-a");
  expect(a.framesOfType("interruptTask")).toEqual([]);
  expect(await taskStatus("task-a")).toBe("dispatched");
});
