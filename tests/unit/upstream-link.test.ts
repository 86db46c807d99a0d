import { describe, expect, test } from "bun:test";
import { backoffDelay } from "../../src/core/backoff.ts";
import { ManualClock } from "../../src/core/manual-clock.ts";
import {
  STABLE_LINK_MS,
  UpstreamLink,
  type UpstreamLinkOptions,
} from "../../src/core/upstream-link.ts";
import { FakeLog, FakeTransport, LINK_OPTIONS } from "./fakes.ts";

const URL_ = "wss://makima.example/ws/daemon";
const identity = {
  apiKey: "relay-key",
  machineId: "makima-relay-abc",
  hostname: "edge-1",
  maxConcurrentTasks: 4,
};

function setup(over: Partial<UpstreamLinkOptions> = {}, jitter = 0.5) {
  const clock = new ManualClock();
  const transport = new FakeTransport();
  const log = new FakeLog();
  const seen = { authenticated: [] as string[], frames: [] as string[], downs: 0, drains: 0 };
  let heartbeatTasks = ["t1", "t2"];
  const link = new UpstreamLink(
    { ...LINK_OPTIONS, url: URL_, ...over },
    () => identity,
    transport.connect,
    {
      onAuthenticated: (id) => seen.authenticated.push(id),
      onFrame: (text) => seen.frames.push(text),
      onDown: () => {
        seen.downs += 1;
      },
      onDrain: () => {
        seen.drains += 1;
      },
      heartbeatTasks: () => heartbeatTasks,
    },
    clock,
    () => jitter,
    log,
  );
  const setTasks = (t: string[]) => {
    heartbeatTasks = t;
  };
  /** start + open + authenticated. */
  const up = () => {
    if (link.state.kind === "idle") link.start();
    transport.last.open();
    transport.last.authenticated("srv-daemon-1");
  };
  return { clock, transport, log, seen, link, setTasks, up };
}

describe("UpstreamLink handshake", () => {
  test("connect → authenticate (role relay) → authenticated → open, attempts reset", () => {
    const { link, transport, clock, seen } = setup();
    expect(link.state).toEqual({ kind: "idle" });
    link.start();
    expect(transport.calls).toBe(1);
    expect(transport.last.url).toBe(URL_);
    expect(link.state.kind).toBe("connecting");
    expect(transport.last.sent).toEqual([]); // nothing before the socket opens

    transport.last.open();
    expect(link.state.kind).toBe("authenticating");
    expect(transport.last.frames()).toEqual([{ type: "authenticate", ...identity, role: "relay" }]);
    expect(link.authenticated).toBe(false);
    expect(link.send("x")).toBe("dropped");

    clock.advance(100);
    transport.last.authenticated("srv-daemon-1");
    expect(link.state).toEqual({ kind: "open", daemonId: "srv-daemon-1", since: clock.now() });
    expect([link.authenticated, link.daemonId, link.reconnectAttempts]).toEqual([
      true,
      "srv-daemon-1",
      0,
    ]);
    expect(link.lastConnectedAt).toBe(clock.now());
    expect(seen.authenticated).toEqual(["srv-daemon-1"]);

    // The connect timeout was cleared by the handshake.
    clock.advance(60_000);
    expect(transport.last.terminated).toBe(false);
    expect(link.state.kind).toBe("open");
  });

  test("frames after the handshake go to onFrame verbatim; send writes to the socket", () => {
    const { link, transport, seen, up } = setup();
    up();
    const raw = '{"type":"spawnTask",  "taskId":"t1","x":[1]}';
    transport.last.message(raw);
    expect(seen.frames).toEqual([raw]);
    expect(link.send('{"type":"taskOutput"}')).toBe("sent");
    expect(transport.last.sent.at(-1)).toBe('{"type":"taskOutput"}');
    transport.last.sendResult = "backpressure";
    expect(link.send("y")).toBe("backpressure");
  });

  test("a server that answers authenticate with something else does not open the link", () => {
    const { link, transport, log, seen } = setup();
    link.start();
    transport.last.open();
    transport.last.message({ type: "error", code: "unauthorized", message: "bad key" });
    transport.last.message("not json");
    expect(link.state.kind).toBe("authenticating");
    expect(seen.authenticated).toEqual([]);
    expect(seen.frames).toEqual([]);
    expect(log.events("upstream_rejected").length).toBe(2);
  });

  test("onDrain is passed on only while open", () => {
    const { transport, seen, up, link } = setup();
    link.start();
    transport.last.drain();
    expect(seen.drains).toBe(0);
    up();
    transport.last.drain();
    expect(seen.drains).toBe(1);
  });
});

describe("UpstreamLink heartbeat", () => {
  test("every heartbeatMs, straight to the socket, listing heartbeatTasks()", () => {
    const { link, transport, clock, setTasks, up } = setup();
    up();
    const sock = transport.last;
    const heartbeats = () => sock.frames().filter((f) => f.type === "heartbeat");
    clock.advance(29_999);
    expect(heartbeats()).toEqual([]);
    clock.advance(1);
    expect(heartbeats()).toEqual([{ type: "heartbeat", activeTasks: ["t1", "t2"] }]);
    expect(link.lastHeartbeatAt).toBe(clock.now());
    setTasks([]);
    clock.advance(30_000);
    setTasks(["t9"]);
    clock.advance(30_000);
    expect(heartbeats()).toEqual([
      { type: "heartbeat", activeTasks: ["t1", "t2"] },
      { type: "heartbeat", activeTasks: [] },
      { type: "heartbeat", activeTasks: ["t9"] },
    ]);
  });

  test("no heartbeat before authentication or after the link closed", () => {
    const { link, transport, clock } = setup();
    link.start();
    transport.last.open();
    clock.advance(4999);
    expect(transport.last.frames().map((f) => f.type)).toEqual(["authenticate"]);
    transport.last.authenticated();
    transport.last.serverClose(1006);
    const before = transport.last.sent.length;
    clock.advance(30_000);
    expect(transport.sockets[0]?.sent.length).toBe(before);
  });
});

describe("UpstreamLink reconnects", () => {
  test("close → onDown, then backoff delays grow per attempt and are capped (jitter 0.5)", () => {
    const { link, transport, clock, seen, up } = setup();
    up();
    transport.last.serverClose(1006, "gone");
    expect(seen.downs).toBe(1);
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const state = link.state;
      expect(state.kind).toBe("backoff");
      const delay = state.kind === "backoff" ? state.until - clock.now() : -1;
      delays.push(delay);
      const calls = transport.calls;
      clock.advance(delay - 1);
      expect(transport.calls).toBe(calls); // not one ms early
      clock.advance(1);
      expect(transport.calls).toBe(calls + 1);
      expect(link.reconnectAttempts).toBe(i + 1);
      transport.last.serverClose(1006); // refused again, before open
    }
    expect(delays).toEqual([1500, 2500, 4500, 8500, 10_000, 10_000, 10_000]);
    expect(seen.downs).toBe(1); // only the open link going down counts
    expect(link.reconnectsTotal).toBe(8);
  });

  test("exact delays with jitter 0 and 0.999", () => {
    for (const [jitter, expected] of [
      [0, [1000, 2000, 4000, 8000, 10_000]],
      [0.999, [1999, 2999, 4999, 8999, 10_000]],
    ] as const) {
      const { link, transport, clock } = setup({}, jitter);
      link.start();
      const delays: number[] = [];
      for (let i = 0; i < 5; i++) {
        transport.last.serverClose(1006);
        const s = link.state;
        delays.push(s.kind === "backoff" ? s.until - clock.now() : -1);
        clock.advance(delays.at(-1) as number);
      }
      expect(delays).toEqual([...expected]);
    }
  });

  test("a link that stays up STABLE_LINK_MS resets the attempt counter and the delay", () => {
    const { link, transport, clock } = setup();
    link.start();
    for (let i = 0; i < 3; i++) {
      transport.last.serverClose(1006);
      clock.advance(10_000);
    }
    expect(link.reconnectAttempts).toBe(3);
    transport.last.open();
    transport.last.authenticated();
    // Authenticating is not enough: a server that accepts and drops must not reset the backoff.
    expect(link.reconnectAttempts).toBe(3);
    clock.advance(STABLE_LINK_MS);
    expect([link.reconnectAttempts, link.flapping]).toEqual([0, false]);
    transport.last.serverClose(1001);
    const s = link.state;
    expect(s.kind === "backoff" && s.until - clock.now()).toBe(1500);
  });

  test("a server that accepts and drops at once gets growing delays, and the link says it is flapping", () => {
    const { link, transport, clock, log } = setup();
    link.start();
    const delays: number[] = [];
    const flapping: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      transport.last.open();
      transport.last.authenticated();
      clock.advance(100);
      transport.last.serverClose(1006, "dropped");
      const s = link.state;
      delays.push(s.kind === "backoff" ? s.until - clock.now() : -1);
      flapping.push(link.flapping);
      clock.advance(10_000);
    }
    // Each reconnect waits as attempt 0, 1, 2, 3 would: the backoff never started over.
    const policy = { baseMs: 1000, maxMs: 10_000 };
    expect([delays, flapping, link.linkDrops]).toEqual([
      [0, 1, 2, 3].map((n) => Math.round(backoffDelay(n, policy, () => 0.5))),
      [false, true, true, true],
      4,
    ]);
    expect(log.events("upstream_flapping")).toHaveLength(1);
    // Once a link lasts, it is no longer flapping and the delay starts over.
    transport.last.open();
    transport.last.authenticated();
    clock.advance(STABLE_LINK_MS);
    transport.last.serverClose(1006);
    const s = link.state;
    expect([link.flapping, s.kind === "backoff" && s.until - clock.now()]).toEqual([false, 1500]);
  });

  test("maxReconnects reached → stopped, nothing more is dialled", () => {
    const { link, transport, clock, log } = setup({ maxReconnects: 2 });
    link.start();
    transport.last.serverClose(1006);
    clock.advance(10_000);
    transport.last.serverClose(1006);
    clock.advance(10_000);
    expect(transport.calls).toBe(3);
    transport.last.serverClose(1006);
    expect(link.state.kind).toBe("stopped");
    clock.advance(10 * 60_000);
    expect(transport.calls).toBe(3);
    expect(log.events("upstream_gave_up").length).toBe(1);
    // An operator can still force a reconnect.
    expect(link.reconnectNow().success).toBe(true);
    expect(transport.calls).toBe(4);
  });

  test("maxReconnects 0 gives up at the first close", () => {
    const { link, transport } = setup({ maxReconnects: 0 });
    link.start();
    transport.last.serverClose(1006);
    expect(link.state.kind).toBe("stopped");
  });

  test("reconnectNow: closes the old socket with 1000, resets attempts, dials at once", () => {
    const { link, transport, clock, seen, up } = setup();
    up();
    const old = transport.last;
    const r = link.reconnectNow();
    expect(r.success).toBe(true);
    expect(old.closedWith).toEqual({ code: 1000, reason: "Manual reconnect requested" });
    expect(seen.downs).toBe(1);
    expect(transport.calls).toBe(2);
    expect(link.state.kind).toBe("connecting");
    expect(link.reconnectAttempts).toBe(0);
    // The old socket's close event, arriving later, changes nothing.
    old.serverClose(1000, "Manual reconnect requested");
    expect(link.state.kind).toBe("connecting");
    expect(seen.downs).toBe(1);
    clock.advance(100);
    expect(transport.calls).toBe(2);
  });

  test("reconnectNow during backoff resets attempts and cancels the pending dial", () => {
    const { link, transport, clock } = setup();
    link.start();
    for (let i = 0; i < 3; i++) {
      transport.last.serverClose(1006);
      clock.advance(10_000);
    }
    transport.last.serverClose(1006);
    expect(link.reconnectAttempts).toBe(4);
    link.reconnectNow();
    expect(link.reconnectAttempts).toBe(0);
    expect(transport.calls).toBe(5);
    clock.advance(4999); // below the connect timeout
    expect(transport.calls).toBe(5);
  });

  test("connect timeout terminates a socket that never authenticated; its close reschedules", () => {
    const { link, transport, clock, log } = setup();
    link.start();
    transport.last.open();
    clock.advance(4999);
    expect(transport.last.terminated).toBe(false);
    clock.advance(1);
    expect(transport.last.terminated).toBe(true);
    expect(log.events("upstream_timeout").length).toBe(1);
    transport.last.serverClose(1006);
    expect(link.state.kind).toBe("backoff");
  });

  test("a transport that throws is treated as a close", () => {
    const { link, transport, clock } = setup();
    transport.throwNext = new Error("bad url");
    link.start();
    expect(link.state.kind).toBe("backoff");
    clock.advance(1500);
    expect(transport.calls).toBe(1);
    expect(link.state.kind).toBe("connecting");
  });

  test("events from an old socket after a reconnect are ignored", () => {
    const { link, transport, seen, up } = setup();
    up();
    const old = transport.last;
    link.reconnectNow();
    const fresh = transport.last;
    expect(fresh).not.toBe(old);
    old.open();
    old.authenticated("old-id");
    old.message({ type: "spawnTask", taskId: "t-old" });
    old.drain();
    old.error("boom");
    old.serverClose(1006);
    expect(link.state.kind).toBe("connecting");
    expect(seen.authenticated).toEqual(["srv-daemon-1"]);
    expect(seen.frames).toEqual([]);
    expect(seen.drains).toBe(0);
    expect(old.sent.filter((s) => s.includes("authenticate")).length).toBe(1); // only the first handshake

    fresh.open();
    fresh.authenticated("new-id");
    old.message({ type: "spawnTask", taskId: "t-old" });
    old.serverClose(1006);
    expect(link.daemonId).toBe("new-id");
    expect(seen.frames).toEqual([]);
    expect(link.state.kind).toBe("open");
  });

  test("stop closes with 1000 and never reconnects", () => {
    const { link, transport, clock, up } = setup();
    up();
    link.stop();
    expect(transport.last.closedWith?.code).toBe(1000);
    expect(link.state.kind).toBe("stopped");
    transport.last.serverClose(1000);
    clock.advance(60_000);
    expect(transport.calls).toBe(1);
  });
});

describe("UpstreamLink unconfigured", () => {
  test("a URL without a key: logs what is missing, never connects", () => {
    const { link, transport, log } = setup({ unconfiguredReason: "MAKIMA_API_KEY is not set" });
    link.start();
    expect([link.state, transport.calls]).toEqual([
      { kind: "unconfigured", reason: "MAKIMA_API_KEY is not set" },
      0,
    ]);
    expect(log.events("upstream_unconfigured")[0]?.details).toContain("MAKIMA_API_KEY is not set");
  });

  test("url null: logs once, never connects, reconnectNow refuses", () => {
    const { link, transport, clock, log } = setup({
      url: null,
      unconfiguredReason: "MAKIMA_SERVER_URL is not set",
    });
    expect(link.state).toEqual({ kind: "unconfigured", reason: "MAKIMA_SERVER_URL is not set" });
    link.start();
    clock.advance(3_600_000);
    expect(transport.calls).toBe(0);
    const logged = log.events("upstream_unconfigured");
    expect(logged.length).toBe(1);
    expect(logged[0]?.details).toContain("MAKIMA_SERVER_URL is not set");
    const r = link.reconnectNow();
    expect(r.success).toBe(false);
    expect(r.message).toContain("not configured");
    link.stop();
    expect(link.state.kind).toBe("unconfigured");
    expect(link.send("x")).toBe("dropped");
    expect(transport.calls).toBe(0);
    expect(log.events("upstream_unconfigured").length).toBe(1);
  });
});

describe("UpstreamLink: the peer's frame limit and link drops", () => {
  const ids = (n: number) =>
    Array.from({ length: n }, (_, i) => `task-${String(i).padStart(6, "0")}`);

  test("a parent's announced limit splits the heartbeat into parts that each fit and together list every task", () => {
    const { link, transport, clock, setTasks } = setup();
    link.start();
    const sock = transport.last;
    sock.open();
    sock.message({ type: "authenticated", daemonId: "parent-1", maxFrameBytes: 1024 });
    const tasks = ids(300);
    setTasks(tasks);
    clock.advance(30_000);
    const parts = sock.sent.filter((s) => s.includes('"heartbeat"'));
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((p) => Buffer.byteLength(p) <= 1024)).toBe(true);
    const frames = parts.map((p) => JSON.parse(p) as { activeTasks: string[]; more?: boolean });
    expect(frames.flatMap((f) => f.activeTasks)).toEqual(tasks);
    expect(frames.map((f) => f.more ?? false)).toEqual([...parts.slice(1).map(() => true), false]);
    expect(link.fits("x".repeat(1024))).toBe(true);
    expect(link.fits("é".repeat(513))).toBe(false);
  });

  test("without an announced limit (the Makima server) the heartbeat stays one frame, and every frame fits", () => {
    const { link, transport, clock, setTasks, up, log } = setup();
    up();
    setTasks(ids(80_000));
    clock.advance(30_000);
    const beats = transport.last.sent.filter((s) => s.includes('"heartbeat"'));
    expect(beats).toHaveLength(1);
    expect(link.fits("x".repeat(5_000_000))).toBe(true);
    // Over 1 MiB: the relay says a server with the common limit would close the link on it.
    expect(Buffer.byteLength(beats[0] as string)).toBeGreaterThan(1024 * 1024);
    expect(log.events("heartbeat_large")).toHaveLength(1);
    clock.advance(30_000);
    expect(log.events("heartbeat_large")).toHaveLength(1);
  });

  test("a link that drops after authenticating is counted with when and why; reconnecting resets attempts, not drops", () => {
    const { link, transport, clock, up } = setup();
    expect([link.linkDrops, link.lastDisconnectAt, link.lastDisconnectReason]).toEqual([
      0,
      null,
      null,
    ]);
    up();
    clock.advance(5000);
    transport.last.serverClose(1009, "frame too large");
    expect([link.linkDrops, link.lastDisconnectAt, link.lastDisconnectReason]).toEqual([
      1,
      clock.now(),
      "code 1009: frame too large",
    ]);
    clock.advance(2000);
    transport.last.open();
    transport.last.authenticated("again");
    // The attempt counts until the new link has stayed up STABLE_LINK_MS.
    expect([link.reconnectAttempts, link.linkDrops]).toEqual([1, 1]);
    // A connect that fails before authenticating is not a drop, but it is the last disconnect.
    transport.last.serverClose(1006, "");
    clock.advance(2000);
    transport.last.serverClose(1006, "");
    expect([link.linkDrops, link.lastDisconnectReason]).toEqual([2, "code 1006"]);
  });

  test("a reconnect the operator asked for is not a drop", () => {
    const { link, up } = setup();
    up();
    link.reconnectNow();
    expect(link.linkDrops).toBe(0);
  });
});
