/**
 * `makima-relay status`: the pure table and argument parsing, then exit codes
 * against real in-process relays (ok, degraded, disconnected) and a port where
 * nothing listens, and once through the real CLI entry.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  formatStatus,
  formatUptime,
  parseStatusArgs,
  runStatus,
  STATUS_EXIT,
  type StatusDoc,
} from "../../src/cli/status.ts";
import { connectSimDaemon, startSimServer } from "../../src/sim/index.ts";
import { freePort, REPO_ROOT } from "../helpers/binary.ts";
import { startTestRelay, TEST_KEY } from "../helpers/relay.ts";

const DOC: StatusDoc = {
  status: "degraded",
  agentName: "edge-7",
  version: "1.2.3",
  upstreamConnected: true,
  upstreamState: "open",
  reconnectAttempts: 0,
  connectedDaemons: 0,
  activeTasks: 4,
  pendingTasks: 1,
  totalTasksProcessed: 120,
  lostTasks: 2,
  uptimeSeconds: 3723,
  outbox: { frames: 1, bytes: 2048, droppedFrames: 0 },
};

describe("formatStatus", () => {
  test("one aligned line per figure", () => {
    expect(formatStatus(DOC, "http://127.0.0.1:8787")).toBe(
      [
        "relay     edge-7 at http://127.0.0.1:8787",
        "status    degraded",
        "upstream  connected",
        "daemons   0",
        "tasks     4 active, 1 pending (120 received, 2 lost)",
        "outbox    1 frame (2.0 KiB), 0 dropped",
        "uptime    1h 02m 03s",
        "version   1.2.3",
      ].join("\n"),
    );
  });

  test("a disconnected upstream shows its state and attempts", () => {
    const text = formatStatus(
      {
        ...DOC,
        status: "disconnected",
        upstreamConnected: false,
        upstreamState: "backoff",
        reconnectAttempts: 1,
      },
      "http://x",
    );
    expect(text).toContain("upstream  backoff, 1 reconnect attempt\n");
  });

  test("a draining relay and a flapping upstream say so", () => {
    const text = formatStatus({ ...DOC, draining: true, upstreamFlapping: true }, "http://x");
    expect(text.split("\n").slice(1, 3)).toEqual([
      "status    degraded, draining",
      "upstream  connected (flapping: the server keeps dropping the link)",
    ]);
  });

  test.each([
    [0, "0s"],
    [59, "59s"],
    [61, "1m 01s"],
    [3600, "1h 00m 00s"],
    [90_061, "1d 01h 01m"],
    [-5, "0s"],
  ])("uptime %p s reads %p", (seconds, text) => {
    expect(formatUptime(seconds)).toBe(text);
  });
});

describe("parseStatusArgs", () => {
  const dflt = "http://127.0.0.1:8787";
  test.each([
    [[], { ok: true, value: dflt }],
    [["--url", "http://h:1"], { ok: true, value: "http://h:1" }],
    [["--url=https://h:2/"], { ok: true, value: "https://h:2" }],
    [["--url", "http://h:3/status"], { ok: true, value: "http://h:3" }],
    [["--url"], { ok: false, error: "--url: missing value" }],
    [["--url", "h:4"], { ok: false, error: expect.stringContaining("http://") }],
    [["--json"], { ok: false, error: expect.stringContaining('"--json"') }],
  ])("%p", (args, expected) => {
    expect(parseStatusArgs(args as string[], dflt)).toEqual(expected as never);
  });
});

/** Runs the command against `url`, capturing what it prints. */
async function status(url: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runStatus(url, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    timeoutMs: 2000,
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("runStatus against a live relay", () => {
  test("no upstream configured: disconnected, exit 1", async () => {
    await using relay = await startTestRelay({ env: { MAKIMA_API_KEY: "" } });
    const r = await status(relay.url);
    expect(r).toMatchObject({ code: STATUS_EXIT.notOk, err: "" });
    expect(r.out).toContain("status    disconnected");
    expect(r.out).toContain("upstream  unconfigured");
  });

  test("upstream up, no daemon: degraded, exit 1; with a daemon: ok, exit 0", async () => {
    await using server = startSimServer();
    await using relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url } });
    await server.waitForConnection();
    await relay.logs.waitFor((l) => l.event === "authenticated");
    const degraded = await status(relay.url);
    expect(degraded.code).toBe(STATUS_EXIT.notOk);
    expect(degraded.out).toContain("status    degraded");

    await using daemon = await connectSimDaemon({ url: relay.daemonUrl, apiKey: TEST_KEY });
    await daemon.authenticated;
    const ok = await status(relay.url);
    expect(ok).toMatchObject({ code: STATUS_EXIT.ok, err: "" });
    expect(ok.out).toContain("status    ok");
    expect(ok.out).toContain("daemons   1");
  });

  test("nothing listening: exit 2 and one line on stderr", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await status(url);
    expect(r.code).toBe(STATUS_EXIT.unreachable);
    expect(r.out).toBe("");
    expect(r.err.split("\n")).toHaveLength(1);
    expect(r.err).toContain(`${url}/status`);
  });

  test("something that is not a relay: exit 2", async () => {
    using other = Bun.serve({ port: 0, fetch: () => Response.json({ hello: "world" }) });
    expect((await status(`http://127.0.0.1:${other.port}`)).code).toBe(STATUS_EXIT.unreachable);
  });
});

describe("the CLI entry", () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    Bun.spawn([process.execPath, join(REPO_ROOT, "src/main.ts"), ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdout: "pipe",
      stderr: "pipe",
    });

  test("status --url against a relay and against nothing; the default URL uses --port", async () => {
    await using relay = await startTestRelay({ env: { MAKIMA_API_KEY: "" } });
    const live = run(["status", "--url", relay.url]);
    expect(await live.exited).toBe(STATUS_EXIT.notOk);
    expect(await new Response(live.stdout).text()).toContain("status    disconnected");

    const byPort = run(["status", "--port", String(relay.port)]);
    expect(await byPort.exited).toBe(STATUS_EXIT.notOk);

    const port = await freePort();
    const dead = run(["status"], { MAKIMA_RELAY_PORT: String(port) });
    expect(await dead.exited).toBe(STATUS_EXIT.unreachable);
    expect(await new Response(dead.stderr).text()).toContain(`127.0.0.1:${port}/status`);
  });

  test("--help lists the serve, demo and status commands", async () => {
    const help = run(["--help"]);
    const text = await new Response(help.stdout).text();
    expect(await help.exited).toBe(0);
    for (const line of ["\n  serve  ", "\n  demo  ", "\n  status [--url URL]\n"]) {
      expect(text).toContain(line);
    }
  });
});
