/**
 * `makima-relay drain`: argument parsing, then the real CLI entry (src/main.ts
 * in a child bun) against in-process relays: exit 0 once the relay holds
 * nothing, 1 when it still holds a task at the timeout, 2 when refused or
 * unreachable.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { DEFAULT_DRAIN_TIMEOUT_MS, DRAIN_EXIT, parseDrainArgs } from "../../src/cli/drain.ts";
import { freePort, REPO_ROOT } from "../helpers/binary.ts";
import { startLinked } from "../helpers/linked.ts";
import { ready } from "../helpers/probes.ts";
import { startTestRelay } from "../helpers/relay.ts";

const DEFAULTS = { url: "http://127.0.0.1:8787", token: "from-env" };

describe("parseDrainArgs", () => {
  test("defaults: the configured port, the configured token, 300000 ms", () => {
    expect(parseDrainArgs([], DEFAULTS)).toEqual({
      ok: true,
      value: { ...DEFAULTS, timeoutMs: DEFAULT_DRAIN_TIMEOUT_MS },
    });
  });

  test("--url, --token and --timeout-ms, spaced or with =; --token wins over the env", () => {
    const args = ["--url=http://edge:9000/", "--token", "T", "--timeout-ms", "1500"];
    expect(parseDrainArgs(args, DEFAULTS)).toEqual({
      ok: true,
      value: { url: "http://edge:9000", token: "T", timeoutMs: 1500 },
    });
  });

  test.each([
    [["--timeout-ms", "soon"], '--timeout-ms: expected a whole number of milliseconds, got "soon"'],
    [["--url", "edge:9000"], '--url: expected an http:// or https:// URL, got "edge:9000"'],
    [["--token"], "--token: missing value"],
    [["--force"], 'drain: unknown argument "--force" (see --help)'],
  ])("%p is refused: %s", (args, message) => {
    expect(parseDrainArgs(args, DEFAULTS)).toEqual({ ok: false, error: message });
  });
});

describe("the CLI entry", () => {
  const run = (args: string[], env: Record<string, string> = {}) => {
    const child = Bun.spawn([process.execPath, join(REPO_ROOT, "src/main.ts"), ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    // Stdout is read as it comes, so that a test can wait for a line before it acts.
    let out = "";
    const seen: { text: string; resolve: () => void }[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        out += decoder.decode(chunk, { stream: true });
        for (const s of seen.filter((w) => out.includes(w.text))) s.resolve();
      }
    })();
    return {
      child,
      /** Resolves once stdout holds `text`; rejects if the child exits first. */
      async printed(text: string) {
        const wait = Promise.withResolvers<void>();
        seen.push({ text, resolve: wait.resolve });
        if (out.includes(text)) wait.resolve();
        const exited = reading.then(() => {
          throw new Error(`exited without printing ${JSON.stringify(text)}; printed ${out}`);
        });
        exited.catch(() => {}); // once printed, a later exit is no failure
        await Promise.race([wait.promise, exited]);
      },
      async done() {
        const [code, err] = await Promise.all([child.exited, new Response(child.stderr).text()]);
        await reading;
        return { code, out, err };
      },
    };
  };

  test("drains, waits while a task runs, exits 0 once it completed and reached the server", async () => {
    await using linked = await startLinked({ machineId: "m1", maxConcurrentTasks: 1 });
    const { server, relay, d } = linked;
    server.spawnTask("t1");
    await d.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === "t1");
    const drain = run(["drain", "--url", relay.url, "--timeout-ms", "20000"]);
    // It has drained the relay and seen the task still running before the task ends.
    await drain.printed("draining: 1 active, 0 pending");
    expect(await ready(relay)).toEqual({ status: 503, ready: false, reasons: ["draining"] });
    expect(drain.child.exitCode).toBeNull();
    const done = d.complete("t1", true);
    await server.waitFor((f) => f.raw === done);
    const r = await drain.done();
    expect({ code: r.code, out: r.out, err: r.err }).toEqual({
      code: DRAIN_EXIT.drained,
      out: expect.stringContaining(`drained: ${relay.url} holds no task`),
      err: "",
    });
  });

  test("exit 1 when a task is still held at the timeout; the relay stays draining", async () => {
    await using linked = await startLinked({ machineId: "m1", maxConcurrentTasks: 1 });
    const { server, relay, d } = linked;
    server.spawnTask("stays");
    await d.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === "stays");
    const r = await run(["drain", "--url", relay.url, "--timeout-ms", "300"]).done();
    expect({ code: r.code, err: r.err.trim() }).toEqual({
      code: DRAIN_EXIT.timeout,
      err: "makima-relay drain: not empty after 300 ms (1 active, 0 pending, 0 frames waiting for the server); the relay stays draining (DELETE /drain ends it)",
    });
    expect((await relay.json("/status")).draining).toBe(true);
  });

  test("--help lists the drain command", async () => {
    const help = await run(["--help"]).done();
    expect([help.code, help.out]).toEqual([
      0,
      expect.stringContaining("\n  drain [--url URL] [--token T] [--timeout-ms N]\n"),
    ]);
  });

  test("exit 2 when refused (wrong token) or unreachable; the env's admin token is sent", async () => {
    await using relay = await startTestRelay({
      env: { MAKIMA_API_KEY: "", MAKIMA_RELAY_ADMIN_TOKEN: "admin-token-12345" },
    });
    const wrong = await run(["drain", "--url", relay.url, "--token", "nope"]).done();
    expect({ code: wrong.code, err: wrong.err.trim() }).toEqual({
      code: DRAIN_EXIT.unreachable,
      err: expect.stringMatching(/^makima-relay drain: POST .*\/drain: HTTP 401/),
    });
    expect((await relay.json("/status")).draining).toBe(false);

    const byEnv = await run(["drain", "--url", relay.url], {
      MAKIMA_RELAY_ADMIN_TOKEN: "admin-token-12345",
    }).done();
    expect([byEnv.code, (await relay.json("/status")).draining]).toEqual([
      DRAIN_EXIT.drained,
      true,
    ]);

    const port = await freePort();
    const dead = await run(["drain", "--url", `http://127.0.0.1:${port}`]).done();
    expect([dead.code, dead.err]).toEqual([
      DRAIN_EXIT.unreachable,
      expect.stringContaining(`POST http://127.0.0.1:${port}/drain`),
    ]);
  });
});
