/**
 * The dashboard's server side without a browser: the snapshot, the event
 * stream's framing (first snapshot at once, then changes only, keep-alive
 * comments), and the ?token= hand-over to the app's access guard.
 */
import { describe, expect, test } from "bun:test";
import { SnapshotFeed, type SnapshotFeedOptions } from "../../src/http/dashboard/events.ts";
import { DASHBOARD_HTML, queryTokenAsBearer } from "../../src/http/dashboard/routes.ts";
import { buildSnapshot } from "../../src/http/dashboard/snapshot.ts";
import { fakeDeps, request, T0, task, testApp } from "../http/fake-deps.ts";

/** Reads the stream until `until` matches the text so far (or the time is up). */
async function readUntil(
  body: ReadableStream<Uint8Array>,
  until: (text: string) => boolean,
  timeoutMs = 2000,
): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!until(text) && Date.now() < deadline) {
      const next = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now())]);
      if (!next || next.done) break;
      text += decoder.decode(next.value, { stream: true });
    }
  } finally {
    await reader.cancel();
  }
  return text;
}

const events = (text: string) => text.split("\n\n").filter((e) => e.startsWith("event: snapshot"));

/** One stream of a feed with roomy limits; `over` sets the rest. */
function snapshotStream<T>(
  over: Pick<SnapshotFeedOptions<T>, "build" | "now" | "intervalMs" | "keepAliveMs" | "onError">,
): ReadableStream<Uint8Array> {
  const feed = new SnapshotFeed({ maxStreams: 1, maxSnapshotBytes: 1 << 20, ...over });
  return feed.open() as ReadableStream<Uint8Array>;
}

describe("buildSnapshot", () => {
  test("upstream, counters, daemons (sorted, with load), recent tasks and logs", () => {
    const { deps, state } = fakeDeps();
    state.daemons = ["m-b", "m-a"].map((machineId, i) => ({
      daemonId: `d-${i}`,
      machineId,
      hostname: `${machineId}.host`,
      role: "daemon" as const,
      maxConcurrentTasks: 4,
      taskIds: i === 0 ? ["t1", "t2"] : [],
      connectedAt: T0,
      lastHeartbeat: null,
    }));
    state.tasks = [task({ taskId: "t9", status: "failed", error: "boom" })];
    state.logs = [{ id: 1, event: "listening", timestamp: T0, details: "hi" }];
    const snap = buildSnapshot(deps);
    expect(snap).toMatchObject({
      status: "ok",
      upstream: { state: "open", authenticated: true, reconnectAttempts: 0 },
      counters: { activeTasks: 3, pendingTasks: 1, outboxFrames: 5, outboxDropped: 1 },
      daemons: [
        { machineId: "m-a", active: 0, capacity: 4 },
        { machineId: "m-b", active: 2, capacity: 4 },
      ],
      tasks: [{ taskId: "t9", status: "failed", error: "boom" }],
      logs: [{ event: "listening" }],
    });
    expect(state.taskQueries.at(-1)).toEqual({ limit: 25, offset: 0 });
  });
});

describe("SnapshotFeed", () => {
  test("a snapshot at once, then only when it changes, and keep-alive comments in between", async () => {
    let value = 1;
    let builds = 0;
    const body = snapshotStream({
      build: () => {
        builds += 1;
        return { value };
      },
      now: () => Date.now(),
      intervalMs: 10,
      keepAliveMs: 60,
    });
    setTimeout(() => {
      value = 2;
    }, 40);
    const text = await readUntil(
      body,
      (t) => t.includes('"value":2') && t.includes(": keep-alive"),
    );
    expect(text.startsWith("retry: 1000\n\n")).toBe(true);
    expect(events(text).map((e) => JSON.parse(e.split("data: ")[1] as string).snapshot)).toEqual([
      { value: 1 },
      { value: 2 },
    ]);
    expect(text).toContain(": keep-alive\n\n");
    // Cancelled by readUntil: the timer is gone, nothing is built any more.
    const after = builds;
    await Bun.sleep(50);
    expect(builds).toBe(after);
  });

  test("a snapshot that fails to build is reported and the stream goes on", async () => {
    const errors: unknown[] = [];
    let fail = true;
    const body = snapshotStream({
      build: () => {
        if (fail) {
          fail = false;
          throw new Error("store down");
        }
        return { ok: true };
      },
      now: () => Date.now(),
      intervalMs: 10,
      keepAliveMs: 5000,
      onError: (e) => errors.push(e),
    });
    const text = await readUntil(body, (t) => t.includes('"ok":true'));
    expect(events(text)).toHaveLength(1);
    expect(String(errors[0])).toContain("store down");
  });
});

describe("routes", () => {
  test("GET /dashboard: the self-contained page, with a CSP that allows no other origin", async () => {
    const res = await testApp(fakeDeps().deps).handle(request("/dashboard"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await res.text();
    expect(html).toBe(DASHBOARD_HTML);
    // No external resource of any kind: no src= or href= to another origin.
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//i);
  });

  test("GET /dashboard/events: an event stream whose first event is the snapshot", async () => {
    const res = await testApp(fakeDeps().deps).handle(request("/dashboard/events"));
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const text = await readUntil(res.body as ReadableStream<Uint8Array>, (t) =>
      t.includes("event: snapshot"),
    );
    const first = JSON.parse((events(text)[0] as string).split("data: ")[1] as string);
    expect(first).toMatchObject({ serverTime: T0 + 90_500, snapshot: { status: "ok" } });
  });

  test("the routes stay out of the OpenAPI document", async () => {
    const res = await testApp(fakeDeps().deps).handle(request("/swagger/json"));
    const paths = Object.keys(((await res.json()) as { paths: object }).paths);
    expect(paths.filter((p) => p.startsWith("/dashboard"))).toEqual([]);
  });
});

describe("protected reads", () => {
  const token = "admin-token-for-dashboard";
  const app = () => testApp(fakeDeps().deps, { adminToken: token, protectReads: true }, "10.0.0.9");

  test.each([
    ["/dashboard", 401],
    ["/dashboard?token=wrong", 401],
    [`/dashboard?token=${token}`, 200],
    [`/dashboard/events?token=wrong`, 401],
    // ?token= is for the dashboard's two paths only; the JSON API wants the header.
    [`/status?token=${token}`, 401],
    [`/tasks?token=${token}`, 401],
  ])("%s → %d", async (path, status) => {
    const res = await app().handle(request(path));
    expect(res.status).toBe(status);
    await res.body?.cancel();
  });

  test("the events stream opens with ?token= and with the bearer header", async () => {
    for (const req of [
      request(`/dashboard/events?token=${token}`),
      request("/dashboard/events", { headers: { authorization: `Bearer ${token}` } }),
    ]) {
      const res = await app().handle(req);
      expect(res.status).toBe(200);
      await res.body?.cancel();
    }
  });

  test("queryTokenAsBearer leaves a present header and other paths alone", () => {
    const withHeader = request(`/dashboard?token=query`, {
      headers: { authorization: "Bearer header" },
    });
    queryTokenAsBearer(withHeader);
    expect(withHeader.headers.get("authorization")).toBe("Bearer header");
    const other = request(`/logs?token=query`);
    queryTokenAsBearer(other);
    expect(other.headers.get("authorization")).toBeNull();
    const events = request(`/dashboard/events?token=query`);
    queryTokenAsBearer(events);
    expect(events.headers.get("authorization")).toBe("Bearer query");
  });
});
