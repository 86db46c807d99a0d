/**
 * Hostile input against /ws/daemon, one case a row. After each, the relay
 * still dispatches and relays a normal task, and the server has received
 * nothing it should not have.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  connectSimDaemon,
  type SimDaemon,
  type SimServer,
  startSimServer,
} from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";

let server: SimServer;
let relay: TestRelay;
let worker: SimDaemon;
let holder: SimDaemon;
let cases = 0;
let mainConn = "";

beforeAll(async () => {
  server = startSimServer();
  relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_AUTH_TIMEOUT_MS: "300",
    },
  });
  mainConn = (await server.waitForConnection()).connId;
  holder = await connect("holder", 1);
  server.spawnTask("held-by-holder");
  await holder.waitFor((f) => f.msg?.type === "spawnTask");
  worker = await connect("worker", 1);
});

afterAll(async () => {
  await relay[Symbol.asyncDispose]();
  await server.stop();
});

async function connect(machineId: string, capacity = 0, auth = true): Promise<SimDaemon> {
  const d = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId,
    maxConcurrentTasks: capacity,
    autoAuthenticate: auth,
  });
  if (auth) await d.authenticated;
  return d;
}

/** The relay still works: a task goes to the worker and its frames reach the server. */
async function stillRelays(): Promise<void> {
  const id = `healthy-${++cases}`;
  server.spawnTask(id, `healthy task ${id}`, {}, mainConn);
  await worker.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === id);
  const out = worker.taskOutput(id, "fine");
  const done = worker.complete(id, true);
  await server.waitFor((f) => f.raw === done);
  expect(server.received.some((f) => f.raw === out)).toBe(true);
}

const errorCode = async (d: SimDaemon, code: string, contains = "") =>
  (
    await d.waitFor(
      (f) =>
        f.msg?.type === "error" && f.msg.code === code && String(f.msg.message).includes(contains),
    )
  ).msg;

type Outcome = { error: string; field?: string } | { close: number };

const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
const deepObject = `{"type":"taskOutput","taskId":"x","n":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;

const afterAuth: Array<[string, string | Uint8Array, Outcome]> = [
  ["not JSON", "hello there", { error: "badMessage" }],
  ["a JSON array", "[1,2,3]", { error: "badMessage" }],
  ["null", "null", { error: "badMessage" }],
  ["a number", "42", { error: "badMessage" }],
  ["no type", '{"taskId":"x"}', { error: "badMessage", field: "type" }],
  ["type not a string", '{"type":7}', { error: "badMessage", field: "type" }],
  ["100k-deep nesting", deep, { error: "badMessage" }],
  // JSON.parse copes with this depth quickly; the frame is then judged on its fields like any other.
  ["100k-deep nesting inside a frame", deepObject, { error: "notYourTask" }],
  [
    "taskId a number",
    '{"type":"taskOutput","taskId":12}',
    { error: "badMessage", field: "taskId" },
  ],
  [
    "taskComplete without success",
    '{"type":"taskComplete","taskId":"x"}',
    { error: "badMessage", field: "success" },
  ],
  [
    "taskComplete success a string",
    '{"type":"taskComplete","taskId":"x","success":"yes"}',
    { error: "badMessage", field: "success" },
  ],
  [
    "taskComplete error a number",
    '{"type":"taskComplete","taskId":"x","success":false,"error":5}',
    { error: "badMessage", field: "error" },
  ],
  [
    "taskStatusChange newStatus a number",
    '{"type":"taskStatusChange","taskId":"x","newStatus":3}',
    { error: "badMessage", field: "newStatus" },
  ],
  [
    "heartbeat activeTasks a string",
    '{"type":"heartbeat","activeTasks":"all"}',
    { error: "badMessage", field: "activeTasks" },
  ],
  [
    "heartbeat activeTasks of numbers",
    '{"type":"heartbeat","activeTasks":[1]}',
    { error: "badMessage", field: "activeTasks" },
  ],
  [
    "capacityUpdate -1",
    '{"type":"capacityUpdate","maxConcurrentTasks":-1}',
    { error: "badMessage", field: "maxConcurrentTasks" },
  ],
  [
    "capacityUpdate 1e9",
    '{"type":"capacityUpdate","maxConcurrentTasks":1e9}',
    { error: "badMessage", field: "maxConcurrentTasks" },
  ],
  [
    "authenticate twice",
    JSON.stringify({
      type: "authenticate",
      apiKey: TEST_KEY,
      machineId: "again",
      hostname: "h",
      maxConcurrentTasks: 1,
    }),
    { error: "badMessage" },
  ],
  [
    "a spoofed taskComplete",
    '{"type":"taskComplete","taskId":"held-by-holder","success":true}',
    { error: "notYourTask" },
  ],
  [
    "output for an unknown task",
    '{"type":"taskOutput","taskId":"no-such-task","output":"x"}',
    { error: "notYourTask" },
  ],
  ["a binary frame", new Uint8Array([1, 2, 3, 4]), { error: "badMessage" }],
  [
    "a 10 MB frame",
    `{"type":"taskOutput","taskId":"x","output":"${"a".repeat(10 * 1024 * 1024)}"}`,
    { close: 1009 },
  ],
];

test.each(afterAuth)("after authenticate: %s", async (_name, input, outcome) => {
  const d = await connect(`hostile-${++cases}`);
  const before = server.received.length;
  d.sendRaw(input);
  if ("error" in outcome) {
    const err = await errorCode(d, outcome.error);
    if (outcome.field) expect(err.message).toContain(`"${outcome.field}`);
    // The connection carries on: a later frame is still answered.
    d.taskOutput("probe-after", "x");
    await errorCode(d, "notYourTask", "probe-after");
    expect(d.closed).toBeUndefined();
  } else {
    expect((await d.waitForClose(5000)).code).toBe(outcome.close);
  }
  await d.close().catch(() => {});
  expect(
    server.received
      .slice(before)
      .filter((f) => f.connId && f.raw === (typeof input === "string" ? input : "")),
  ).toEqual([]);
  await stillRelays();
});

const beforeAuth: Array<[string, string | Uint8Array, string]> = [
  ["a frame before authenticate", '{"type":"taskOutput","taskId":"x"}', "badMessage"],
  ["heartbeat before authenticate", '{"type":"heartbeat","activeTasks":[]}', "badMessage"],
  [
    "authenticate with a wrong key",
    JSON.stringify({
      type: "authenticate",
      apiKey: "nope",
      machineId: "m",
      hostname: "h",
      maxConcurrentTasks: 1,
    }),
    "unauthorized",
  ],
  [
    "authenticate without machineId",
    JSON.stringify({
      type: "authenticate",
      apiKey: TEST_KEY,
      hostname: "h",
      maxConcurrentTasks: 1,
    }),
    "badMessage",
  ],
  [
    "authenticate with capacity -1",
    JSON.stringify({
      type: "authenticate",
      apiKey: TEST_KEY,
      machineId: "m",
      hostname: "h",
      maxConcurrentTasks: -1,
    }),
    "badMessage",
  ],
  [
    "authenticate with capacity 1e9",
    JSON.stringify({
      type: "authenticate",
      apiKey: TEST_KEY,
      machineId: "m",
      hostname: "h",
      maxConcurrentTasks: 1e9,
    }),
    "badMessage",
  ],
  ["not JSON before authenticate", "{oops", "badMessage"],
  ["binary before authenticate", new Uint8Array([0xff]), "badMessage"],
];

test.each(beforeAuth)("before authenticate: %s → error and 4401", async (_name, input, code) => {
  const d = await connect(`pre-${++cases}`, 0, false);
  d.sendRaw(input);
  await errorCode(d, code);
  expect((await d.waitForClose(5000)).code).toBe(4401);
  await stillRelays();
});

test("silence after connecting is closed with 4401 after the auth timeout", async () => {
  const d = await connect(`silent-${++cases}`, 0, false);
  expect((await d.waitForClose(5000)).code).toBe(4401);
  await stillRelays();
});

test("a flood above the rate limit is slowed, never dropped, and keeps the connection", async () => {
  const RATE = 200;
  const BURST = 20;
  await using limited = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_DAEMON_RATE: String(RATE),
      MAKIMA_RELAY_DAEMON_BURST: String(BURST),
    },
  });
  const upstream = await server.waitForConnection(5000, (c) => c.machineId === limited.machineId);
  const d = await connectSimDaemon({
    url: limited.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "flooder",
  });
  await d.authenticated;
  // 2 KB each, 400 KB in all: more than one socket read, so pausing the socket has something to hold back.
  const pad = "x".repeat(2048);
  const sent = Array.from({ length: 200 }, (_, i) => d.send({ type: "flood", n: i, pad }));
  const last = sent.at(-1) as string;
  await server.waitFor((f) => f.raw === last && f.connId === upstream.connId, 10_000);
  // All of them, in order, none twice.
  const relayed = server.received.filter((f) => sent.includes(f.raw)).map((f) => f.raw);
  expect(relayed).toEqual(sent);
  // The socket was paused (Bun still hands over what it had read; the debt then delays the next
  // read: the timing is the token bucket's, tested on a manual clock in tests/unit).
  expect(limited.logs.items.filter((l) => l.event === "daemon_throttled")).toHaveLength(1);
  expect(d.received.filter((f) => f.msg?.type === "error")).toEqual([]);
  expect(d.closed).toBeUndefined();
  await d.close();
  await stillRelays();
});
