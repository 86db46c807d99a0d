/**
 * The dashboard's event stream never queues for a reader that does not keep
 * up: it gets the latest snapshot when it reads again, never a backlog. Each
 * event is bounded (the snapshot is built from capped parts) and so is the
 * number of streams open at once. Real HTTP clients on real sockets that send
 * their GET and stop reading show what the relay handed to such a stream.
 */
import { describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { SnapshotFeed } from "../../src/http/dashboard/events.ts";
import { dashboardRoutes, MAX_EVENT_STREAMS } from "../../src/http/dashboard/routes.ts";
import {
  buildSnapshot,
  type DashboardSnapshot,
  LISTED_DAEMONS,
  RECENT_TASKS,
  SNAPSHOT_MAX_BYTES,
} from "../../src/http/dashboard/snapshot.ts";
import type { DaemonView, HttpDeps } from "../../src/http/deps.ts";
import { fakeDeps, request, T0, task } from "./fake-deps.ts";

const WAIT_MS = 10_000;

/** Resolves when `check` holds after one of `notify`'s calls; rejects after `ms`. */
function waitFor(ms = WAIT_MS) {
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  return {
    promise,
    check(cond: boolean) {
      if (!cond) return;
      clearTimeout(timer);
      resolve();
    },
  };
}

/** Deps whose snapshot changes at every build (totalTasksProcessed counts builds). */
function changingDeps(onBuild: (n: number) => void): HttpDeps {
  const { deps, state } = fakeDeps();
  let n = 0;
  return {
    ...deps,
    counters: () => {
      n += 1;
      onBuild(n);
      return { ...state.counters, totalTasksProcessed: n };
    },
  };
}

function parseEvents(text: string): { serverTime: number; snapshot: DashboardSnapshot }[] {
  return text
    .split("\n\n")
    .filter((e) => e.startsWith("event: snapshot"))
    .map((e) => JSON.parse(e.slice(e.indexOf("data: ") + 6)));
}

describe("a reader that falls behind", () => {
  test("gets the latest snapshot when it reads again, not the 100 it missed", async () => {
    const built = waitFor();
    const deps = changingDeps((n) => built.check(n >= 100));
    const app = new Elysia().use(dashboardRoutes(deps, { intervalMs: 1 }));
    const res = await app.handle(request("/dashboard/events"));
    // Not reading while the snapshot changes 100 times.
    await built.promise;
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    const deadline = Date.now() + WAIT_MS;
    let seen: number[] = [];
    while (Date.now() < deadline) {
      const next = await reader.read();
      if (next.done) break;
      text += decoder.decode(next.value, { stream: true });
      seen = parseEvents(text).map((e) => e.snapshot.counters.totalTasksProcessed);
      if ((seen.at(-1) ?? 0) >= 100) break;
    }
    await reader.cancel();
    // One event, the newest (a second one at most if a build crossed the read).
    expect({ events: seen.length <= 2, latest: (seen.at(-1) ?? 0) >= 100 }).toEqual({
      events: true,
      latest: true,
    });
  });
});

/** A raw HTTP/1.1 client that sends its GET and reads nothing until `resume()`. */
async function stalledClient(port: number) {
  let text = "";
  let onData: (() => void) | null = null;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      open: (s) => {
        // Stop reading at once: the kernel buffers fill, then Bun.serve sees backpressure.
        s.pause();
      },
      data: (_s, chunk) => {
        text += chunk.toString("latin1");
        onData?.();
      },
    },
  });
  socket.write(`GET /dashboard/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  return {
    /** Starts reading; resolves once the text read so far satisfies `until`. */
    resume(until: (text: string) => boolean): Promise<string> {
      const done = Promise.withResolvers<string>();
      const timer = setTimeout(() => done.reject(new Error("no such data in time")), WAIT_MS);
      onData = () => {
        if (!until(text)) return;
        clearTimeout(timer);
        done.resolve(text);
      };
      socket.resume();
      return done.promise;
    },
    end: () => socket.end(),
  };
}

describe("clients that connect and do not read, over real sockets", () => {
  test("the relay hands each stream only what its socket took; the rest is skipped", async () => {
    const CLIENTS = 3;
    const PAD = "x".repeat(64 * 1024);
    let n = 0;
    let onPublish = (): void => {};
    const feed = new SnapshotFeed<DashboardSnapshot>({
      build: () => {
        n += 1;
        queueMicrotask(() => onPublish());
        // A 64 KiB snapshot that changes every millisecond: 64 MiB/s to a reader keeping up.
        return { n, pad: PAD } as unknown as DashboardSnapshot;
      },
      now: () => Date.now(),
      intervalMs: 1,
      keepAliveMs: 5000,
      maxStreams: MAX_EVENT_STREAMS,
      maxSnapshotBytes: SNAPSHOT_MAX_BYTES,
    });
    const app = new Elysia().use(dashboardRoutes(fakeDeps().deps, { feed }));
    using server = Bun.serve({ port: 0, fetch: (req) => app.handle(req) });
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, () => stalledClient(server.port as number)),
    );

    // Every stream stalled: 400 snapshots (25 MiB) published past the last one it was handed.
    const stalled = waitFor();
    const behind = (by: number) => {
      const s = feed.stats();
      return s.streams.length === CLIENTS && s.streams.every((c) => c.sentVersion + by < s.version);
    };
    onPublish = () => stalled.check(behind(400));
    await stalled.promise;
    const first = feed.stats();
    // And 400 more: nothing more is handed to a socket that takes nothing.
    const later = waitFor();
    onPublish = () => later.check(feed.stats().version > first.version + 400);
    await later.promise;
    onPublish = () => {};
    const second = feed.stats();
    const published = second.version * (PAD.length + 100);
    expect({
      streams: second.streams.length,
      // What the kernel's socket buffers took (a few MiB on loopback), a small share of it all.
      handedSmall: second.streams.every((c) => c.handedBytes < published / 4),
      unchanged: second.streams.map((c) => c.handedBytes),
      versions: second.streams.map((c) => c.sentVersion),
    }).toEqual({
      streams: CLIENTS,
      handedSmall: true,
      unchanged: first.streams.map((c) => c.handedBytes),
      versions: first.streams.map((c) => c.sentVersion),
    });

    // Reading again: what the socket held, then the latest snapshot, never the backlog.
    const target = feed.stats().version;
    const client = clients[0] as Awaited<ReturnType<typeof stalledClient>>;
    const text = await client.resume((t) => {
      const m = t.match(/"n":(\d+)/g);
      return Number(m?.at(-1)?.slice(4) ?? 0) >= target;
    });
    const events = text.split("event: snapshot").length - 1;
    expect(events).toBeLessThan((first.streams[0]?.sentVersion ?? 0) + 10);
    expect(events).toBeLessThan(target / 4);
    for (const c of clients) c.end();
  });
});

describe("how many streams, and how large an event", () => {
  test(`at most ${MAX_EVENT_STREAMS} streams at once; one more gets a JSON 503; a closed one frees its place`, async () => {
    const app = new Elysia().use(dashboardRoutes(fakeDeps().deps));
    const open = await Promise.all(
      Array.from({ length: MAX_EVENT_STREAMS }, () => app.handle(request("/dashboard/events"))),
    );
    const refused = await app.handle(request("/dashboard/events"));
    expect({
      open: open.filter((r) => r.status === 200).length,
      refused: refused.status,
      json: refused.headers.get("content-type")?.startsWith("application/json"),
      body: await refused.json(),
    }).toEqual({
      open: MAX_EVENT_STREAMS,
      refused: 503,
      json: true,
      body: { error: expect.stringContaining(`${MAX_EVENT_STREAMS} dashboard event streams`) },
    });
    await open[0]?.body?.cancel();
    const again = await app.handle(request("/dashboard/events"));
    expect(again.status).toBe(200);
    await again.body?.cancel();
    for (const r of open.slice(1)) await r.body?.cancel();
  });

  test("the worst snapshot (long names, errors and details of control characters) stays under its bound", () => {
    // A control character is one UTF-8 byte and six in JSON (\u0001): the worst escaping.
    const evil = (units: number) => "\u0001".repeat(units);
    // Far over every cap (the protocol lets a hostname or an error be a whole frame).
    const LONG = 20_000;
    const daemons: DaemonView[] = Array.from({ length: 200 }, (_, i) => ({
      daemonId: crypto.randomUUID(),
      machineId: `${String(i).padStart(3, "0")}${evil(253)}`,
      hostname: evil(LONG),
      role: "daemon",
      maxConcurrentTasks: 4,
      taskIds: ["a", "b"],
      connectedAt: T0,
      lastHeartbeat: T0,
    }));
    const tasks = Array.from({ length: 100 }, (_, i) =>
      task({
        taskId: `${i}${evil(510)}`,
        taskName: evil(LONG),
        machineId: evil(256),
        error: evil(LONG),
        lastReportedStatus: evil(LONG),
      }),
    );
    const logs = Array.from({ length: 100 }, (_, i) => ({
      id: i,
      event: "downstream_disconnect",
      timestamp: T0,
      details: evil(LONG),
    }));
    const { deps } = fakeDeps({ daemons, tasks, logs });
    const snap = buildSnapshot(deps);
    const bytes = Buffer.byteLength(JSON.stringify(snap), "utf8");
    expect({
      bounded: bytes <= SNAPSHOT_MAX_BYTES,
      daemons: snap.daemons.length,
      tasks: snap.tasks.length,
      busy: snap.counters.busySlots,
      capacity: snap.counters.capacity,
    }).toEqual({
      bounded: true,
      daemons: LISTED_DAEMONS,
      tasks: RECENT_TASKS,
      busy: 400,
      capacity: 800,
    });
  });
});
