/**
 * `makima-relay demo` from the compiled binary, started in an empty
 * directory: the dashboard answers and tasks complete within 5 s, SIGTERM
 * stops it with exit 0, and it leaves nothing behind (its database is
 * temporary).
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { connectSimDaemon } from "../../src/sim/index.ts";
import { ensureBinary, freePort, spawnRelayBinary } from "../helpers/binary.ts";
import { pollUntil } from "../helpers/probes.ts";

const START_BUDGET_MS = 5000;

test("the binary's demo serves a dashboard with tasks flowing within 5 s", async () => {
  const binary = await ensureBinary();
  const port = await freePort();
  await using demo = spawnRelayBinary({
    binary,
    args: ["demo", "--rate", "5", "--run-ms", "300-900"],
    env: { MAKIMA_RELAY_PORT: String(port), MAKIMA_RELAY_HOST: "127.0.0.1" },
  });
  const started = performance.now();
  const page = await demo.waitForHttp("/dashboard", START_BUDGET_MS);
  expect(page.headers.get("content-type")).toContain("text/html");
  expect(await page.text()).toContain("/dashboard/events");

  // Bounded poll: a completed task must show up before the budget runs out.
  let completed: { taskId: string; status: string } | undefined;
  while (!completed && performance.now() - started < START_BUDGET_MS) {
    const res = await fetch(`http://127.0.0.1:${port}/tasks?status=completed&limit=1`);
    completed = ((await res.json()) as { tasks: { taskId: string; status: string }[] }).tasks[0];
    if (!completed) await Bun.sleep(100);
  }
  const elapsedMs = performance.now() - started;
  expect(completed).toMatchObject({ status: "completed" });
  expect(elapsedMs).toBeLessThan(START_BUDGET_MS);

  const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as {
    status: string;
    connectedDaemons: number;
  };
  expect(status).toMatchObject({ status: "ok", connectedDaemons: 3 });
  const printed = demo.stdoutLines.join("\n");
  expect(printed).toContain(`dashboard  http://127.0.0.1:${port}/dashboard`);
  expect(printed).toContain(`API docs   http://127.0.0.1:${port}/swagger`);
  expect(printed).toContain(`status     http://127.0.0.1:${port}/status`);
  const dbPath = printed.match(/database {3}(\S+) \(temporary/)?.[1];
  expect(dbPath).toBeDefined();
  expect(existsSync(dbPath as string)).toBe(true);

  // The printed URL and key attach a daemon of one's own, which gets tasks like the others.
  const attach = printed.match(/daemon {5}(ws:\S+) {2}key (\S+)/);
  expect(attach?.[1]).toBe(`ws://127.0.0.1:${port}/ws/daemon`);
  expect(printed).toContain(`MAKIMA_API_KEY=${attach?.[2]} makima daemon`);
  const own = await connectSimDaemon({
    url: attach?.[1] as string,
    apiKey: attach?.[2] as string,
    machineId: "my-own-daemon",
    maxConcurrentTasks: 4,
  });
  await own.authenticated;
  const spawn = await own.waitFor((f) => f.msg?.type === "spawnTask", 10_000);
  const taskId = String(spawn.msg?.taskId);
  own.complete(taskId, true);
  const task = await pollUntil(
    async () =>
      (await (await fetch(`http://127.0.0.1:${port}/tasks/${taskId}`)).json()) as {
        status?: string;
        machineId?: string;
      },
    (t) => t.status === "completed",
  );
  expect(task).toMatchObject({ status: "completed", machineId: "my-own-daemon" });
  await own.close();

  demo.kill("SIGTERM");
  expect(await demo.exited).toBe(0);
  expect(readdirSync(demo.cwd)).toEqual([]);
  expect(existsSync(dbPath as string)).toBe(false);
  console.log(`demo: first completed task ${elapsedMs.toFixed(0)} ms after start`);
}, 60_000);
