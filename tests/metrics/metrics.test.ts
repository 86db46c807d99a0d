/**
 * GET /metrics end to end: a real relay between the simulated server and
 * simulated daemons runs a known sequence (spawns, a queued task, output,
 * a success and a failure, a reconnect, an outage that fills the outbox, a
 * flood), then every value of the scrape is checked exactly.
 *
 * The relay's clock has real timers but a `now()` that moves only when the
 * test says so: dispatch latencies come out exact and rate-limit buckets never
 * refill behind the test's back.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import parse, { type HistogramSample, type MetricFamily } from "parse-prometheus-text-format";
import { type Clock, systemClock } from "../../src/core/clock.ts";
import {
  connectSimDaemon,
  type ReceivedByDaemon,
  type SimDaemon,
  type SimServer,
  startSimServer,
} from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "../helpers/relay.ts";

const BURST = 10;
const QUEUE_WAIT_MS = 1500;

let server: SimServer;
let relay: TestRelay;
const daemons: SimDaemon[] = [];
/** Raw frames, to compute byte counts. */
const up: string[] = [];
const down: string[] = [];
let held: string[] = [];
let text = "";
let contentType: string | null = null;
let families: Map<string, MetricFamily>;
let advanceClock: (ms: number) => void = () => {};

function steppedClock(start: number): { clock: Clock; advance(ms: number): void } {
  let now = start;
  return {
    clock: {
      now: () => now,
      setTimeout: systemClock.setTimeout,
      clearTimeout: systemClock.clearTimeout,
    },
    advance: (ms) => {
      now += ms;
    },
  };
}

async function daemon(machineId: string, maxConcurrentTasks: number): Promise<SimDaemon> {
  const d = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId,
    maxConcurrentTasks,
  });
  daemons.push(d);
  await d.authenticated;
  return d;
}

const got =
  (type: string, taskId?: string) =>
  (f: ReceivedByDaemon | { msg?: { type?: string; taskId?: string } }) =>
    f.msg?.type === type && (taskId === undefined || f.msg.taskId === taskId);

const bytes = (frames: string[]) => frames.reduce((n, f) => n + Buffer.byteLength(f), 0);

/** The samples of a counter or gauge family, as "label=value,…" → number. */
function samples(name: string): Record<string, number> {
  const family = families.get(name);
  if (!family) throw new Error(`no metric family ${name}`);
  return Object.fromEntries(
    family.metrics.map((m) => [
      Object.entries(m.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
      Number((m as { value: string }).value),
    ]),
  );
}

function histogram(name: string): { buckets: Record<string, number>; sum: number; count: number } {
  const m = families.get(name)?.metrics[0] as HistogramSample;
  return {
    buckets: Object.fromEntries(Object.entries(m.buckets).map(([le, n]) => [le, Number(n)])),
    sum: Number(m.sum),
    count: Number(m.count),
  };
}

beforeAll(async () => {
  const { clock, advance } = steppedClock(Date.UTC(2026, 0, 2, 3, 4, 5));
  advanceClock = advance;
  server = startSimServer();
  relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_MAX_RECONNECTS: "2",
      MAKIMA_RELAY_OUTBOX_MAX_BYTES: "1024",
      MAKIMA_RELAY_DAEMON_RATE: "1",
      MAKIMA_RELAY_DAEMON_BURST: String(BURST),
    },
    overrides: { clock, jitter: () => 0 },
  });
  relay.relay.stats.frameLatencySampleEvery = 1; // time every frame, so the count is exact
  const first = await server.waitForConnection();
  const d1 = await daemon("m1", 1);
  const d2 = await daemon("m2", 1);
  const d3 = await daemon("m3", 0);

  // Three spawns: t1 → d1 and t2 → d2 at once, t3 waits in the queue.
  down.push(server.spawnTask("t1"), server.spawnTask("t2"), server.spawnTask("t3"));
  await d1.waitFor(got("spawnTask", "t1"));
  await d2.waitFor(got("spawnTask", "t2"));
  await relay.logs.waitFor((l) => l.event === "task_queued" && l.taskId === "t3");
  down.push(server.pauseTask("t1"), server.send({ type: "announcement", text: "hello" }));
  await d1.waitFor(got("announcement"));

  up.push(d1.taskOutput("t1", "line 1"), d1.taskOutput("t1", "line 2"));
  up.push(d1.send({ type: "daemonLog", text: "an unknown type" }));
  up.push(d2.statusChange("t2", "running", "failing"));
  await server.waitFor(got("daemonLog"));
  await server.waitFor(got("taskStatusChange", "t2"));

  // t1 ends after t3 has waited QUEUE_WAIT_MS; its slot goes to t3.
  advance(QUEUE_WAIT_MS);
  up.push(d1.complete("t1", true));
  await d1.waitFor(got("spawnTask", "t3"));
  up.push(d2.complete("t2", false, "boom"));
  await server.waitFor(got("taskComplete", "t2"));

  // One reconnect: the server drops the link, the relay dials again.
  const back = relay.logs.waitForNext((l) => l.event === "authenticated");
  server.disconnectAll(1012, "server restart");
  await server.waitForConnection(5000, (c) => c.connId !== first.connId);
  await back;

  // An outage: two more failed attempts (MAX_RECONNECTS), then three 450-byte outputs for a
  // 1024-byte outbox, so the oldest is dropped. A frame for someone else's task is answered
  // in order, so its error says the relay has read the three before it.
  const gaveUp = relay.logs.waitForNext((l) => l.event === "upstream_gave_up");
  await server.stop();
  await gaveUp;
  held = [1, 2, 3].map((n) => d1.taskOutput("t3", `${n}:${"x".repeat(400)}`));
  up.push(...held);
  d1.send({ type: "taskOutput", taskId: "not-mine", output: "?" });
  await d1.waitFor((f) => f.msg?.type === "error" && f.msg.code === "notYourTask");

  // A flood: the BURST-th frame empties the bucket and the socket stops being read (the manual
  // clock never refills it here); nothing is dropped or answered with an error.
  for (let i = 0; i <= BURST; i++) d3.heartbeat([]);
  await relay.logs.waitFor((l) => l.event === "daemon_throttled");

  const res = await relay.get("/metrics");
  contentType = res.headers.get("content-type");
  text = await res.text();
  families = new Map(parse(text).map((f) => [f.name, f]));
});

afterAll(async () => {
  // The throttled daemon's socket is read again once its bucket refills: it must hear its close.
  advanceClock(3_600_000);
  for (const d of daemons.splice(0)) await d.close().catch(() => {});
  await relay?.[Symbol.asyncDispose]();
  await server?.stop();
});

describe("GET /metrics", () => {
  test("is the Prometheus text format, every family with HELP and TYPE and the prefix", () => {
    const declared = (kind: "HELP" | "TYPE") =>
      [...text.matchAll(new RegExp(`^# ${kind} (\\S+) `, "gm"))].map((m) => m[1]).sort();
    const names = [...families.keys()].sort();
    expect({
      contentType,
      help: declared("HELP"),
      type: declared("TYPE"),
      unprefixed: names.filter((n) => !n.startsWith("makima_relay_")),
      countersWithoutTotal: [...families.values()]
        .filter((f) => f.type === "COUNTER" && !f.name.endsWith("_total"))
        .map((f) => f.name),
      untyped: [...families.values()].filter((f) => f.type === "UNTYPED").map((f) => f.name),
    }).toEqual({
      contentType: expect.stringMatching(/^text\/plain; version=0\.0\.4/),
      help: names,
      type: names,
      unprefixed: [],
      countersWithoutTotal: [],
      untyped: [],
    });
    expect(names).toHaveLength(22);
  });

  test("upstream, daemons, tasks and queue", () => {
    expect({
      connected: samples("makima_relay_upstream_connected"),
      reconnects: samples("makima_relay_upstream_reconnects_total"),
      linkDrops: samples("makima_relay_upstream_link_drops_total"),
      daemons: samples("makima_relay_daemons_connected"),
      tasks: samples("makima_relay_tasks"),
      queue: samples("makima_relay_task_queue_length"),
      ended: samples("makima_relay_tasks_ended_total"),
      lost: samples("makima_relay_tasks_lost_total"),
    }).toEqual({
      connected: { "": 0 },
      // 1 after the drop, then 1 failed attempt during the outage: the link between them
      // lasted under 30 s, so its attempt still counted and MAX_RECONNECTS (2) was reached.
      reconnects: { "": 2 },
      // Authenticated links lost: the server's drop (1012), then its stop (the outage).
      linkDrops: { "": 2 },
      daemons: { "": 3 },
      tasks: {
        "status=pending": 0,
        "status=dispatched": 1,
        "status=completed": 1,
        "status=failed": 1,
        "status=cancelled": 0,
        "status=lost": 0,
      },
      queue: { "": 0 },
      ended: {
        "status=completed": 1,
        "status=failed": 1,
        "status=cancelled": 0,
        "status=lost": 0,
      },
      lost: { "": 0 },
    });
  });

  test("frames and bytes relayed, by direction and type", () => {
    expect({
      frames: samples("makima_relay_frames_relayed_total"),
      bytes: samples("makima_relay_bytes_relayed_total"),
    }).toEqual({
      frames: {
        "direction=daemon_to_server,type=taskComplete": 2,
        "direction=daemon_to_server,type=taskStatusChange": 1,
        "direction=daemon_to_server,type=taskOutput": 5,
        "direction=daemon_to_server,type=taskProgress": 0,
        "direction=daemon_to_server,type=other": 1,
        "direction=server_to_daemon,type=spawnTask": 3,
        "direction=server_to_daemon,type=pauseTask": 1,
        "direction=server_to_daemon,type=resumeTask": 0,
        "direction=server_to_daemon,type=interruptTask": 0,
        "direction=server_to_daemon,type=sendMessage": 0,
        "direction=server_to_daemon,type=other": 1,
      },
      bytes: { "direction=daemon_to_server": bytes(up), "direction=server_to_daemon": bytes(down) },
    });
    expect(up).toHaveLength(9);
  });

  test("outbox backlog and drops, throttled daemons, storage health", () => {
    expect({
      frames: samples("makima_relay_outbox_frames"),
      bytes: samples("makima_relay_outbox_bytes"),
      full: samples("makima_relay_outbox_full"),
      dropped: samples("makima_relay_outbox_dropped_frames_total"),
      throttleEpisodes: samples("makima_relay_daemon_throttle_episodes_total"),
      throttled: samples("makima_relay_daemons_throttled"),
      storageOk: samples("makima_relay_storage_ok"),
      pendingWrites: samples("makima_relay_storage_pending_writes"),
      failedCommits: samples("makima_relay_storage_failed_commits_total"),
    }).toEqual({
      frames: { "": 2 },
      bytes: { "": bytes(held.slice(1)) },
      // Over its limit with output only it drops the oldest; it is never full.
      full: { "": 0 },
      dropped: { "": 1 },
      throttleEpisodes: { "": 1 },
      throttled: { "": 1 },
      storageOk: { "": 1 },
      pendingWrites: { "": 0 },
      failedCommits: { "": 0 },
    });
  });

  test("dispatch latency: two at once, one after waiting QUEUE_WAIT_MS", () => {
    const wait = QUEUE_WAIT_MS / 1000;
    expect(histogram("makima_relay_dispatch_latency_seconds")).toEqual({
      buckets: {
        "0.001": 2,
        "0.005": 2,
        "0.01": 2,
        "0.05": 2,
        "0.1": 2,
        "0.5": 2,
        "1": 2,
        "5": 3,
        "10": 3,
        "30": 3,
        "60": 3,
        "300": 3,
        "1800": 3,
        "+Inf": 3,
      },
      sum: wait,
      count: 3,
    });
  });

  test("frame relay latency: one observation per forwarded daemon frame", () => {
    const h = histogram("makima_relay_frame_relay_latency_seconds");
    const counts = Object.values(h.buckets);
    expect({
      count: h.count,
      inf: h.buckets["+Inf"],
      cumulative: counts.every((n, i) => i === 0 || n >= (counts[i - 1] as number)),
      positive: h.sum > 0,
    }).toEqual({ count: up.length, inf: up.length, cumulative: true, positive: true });
  });

  test("histograms are written with _bucket (le, ending in +Inf), _sum and _count", () => {
    for (const name of [
      "makima_relay_dispatch_latency_seconds",
      "makima_relay_frame_relay_latency_seconds",
    ]) {
      const lines = text.split("\n").filter((l) => l.startsWith(`${name}_`));
      expect({
        type: families.get(name)?.type,
        buckets: lines.filter((l) => l.startsWith(`${name}_bucket{le="`)).length,
        lastBucket: lines.filter((l) => l.startsWith(`${name}_bucket`)).at(-1),
        sum: lines.filter((l) => l.startsWith(`${name}_sum `)).length,
        count: lines.filter((l) => l.startsWith(`${name}_count `)).length,
      }).toEqual({
        type: "HISTOGRAM",
        buckets: Object.keys(histogram(name).buckets).length,
        lastBucket: expect.stringMatching(new RegExp(`^${name}_bucket\\{le="\\+Inf"\\} \\d+$`)),
        sum: 1,
        count: 1,
      });
    }
  });

  test("each relay has its own registry", async () => {
    await using other = await startTestRelay();
    const scraped = parse(await (await other.get("/metrics")).text());
    const spawns = scraped
      .find((f) => f.name === "makima_relay_frames_relayed_total")
      ?.metrics.find((m) => m.labels?.type === "spawnTask") as { value: string };
    expect({
      spawns: spawns.value,
      distinct: other.metrics.registry !== relay.metrics.registry,
    }).toEqual({
      spawns: "0",
      distinct: true,
    });
  });
});
