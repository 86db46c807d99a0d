/**
 * The dashboard in a real browser against the in-process demo: daemons,
 * live task rows over Server-Sent Events, draining marks, the polling
 * fallback, the ?token= path for protected reads, and screenshots at laptop
 * and phone widths.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import type { SimDaemon } from "../../src/sim/index.ts";
import { launchBrowser, screenshot, type TestBrowser } from "./browser.ts";
import { startTestDemo, type TestDemo } from "./demo-fixture.ts";

let browser: TestBrowser;

/** Each test starts a demo and drives a browser; bun's default 5 s is tight for that on CI. */
const TIMEOUT_MS = 20_000;

beforeAll(async () => {
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.[Symbol.asyncDispose]();
});

/** The demo daemon that received `taskId`'s spawnTask. */
function holderOf(demo: TestDemo, taskId: string): Promise<SimDaemon> {
  return Promise.any(
    demo.daemons.map((d) =>
      d.waitFor((f) => f.msg?.type === "spawnTask" && f.msg.taskId === taskId).then(() => d),
    ),
  );
}

const row = (page: Page, taskId: string, status: string) =>
  page.locator(`tr[data-task-id="${taskId}"][data-status="${status}"]`);

async function openDashboard(page: Page, url: string): Promise<void> {
  const res = await page.goto(url);
  expect(res?.status()).toBe(200);
  await page.locator("#live.sse").waitFor({ timeout: 5000 });
}

test(
  "daemons appear, and a completed task shows within 1 s of its taskComplete",
  async () => {
    await using demo = await startTestDemo();
    const page = await browser.newPage();
    try {
      await openDashboard(page, demo.urls.dashboard);
      for (const d of demo.daemons) {
        await page.locator(`[data-machine-id="${d.machineId}"]`).waitFor({ timeout: 2000 });
      }
      expect(await page.locator("#status").textContent()).toBe("ok");

      const ids = ["e2e-1", "e2e-2", "e2e-3", "e2e-4"];
      for (const id of ids) demo.server.spawnTask(id, `browser ${id}`);
      const holders = await Promise.all(ids.map((id) => holderOf(demo, id)));
      for (const id of ids) await row(page, id, "dispatched").waitFor({ timeout: 2000 });

      const started = performance.now();
      holders[0]?.complete("e2e-1", true);
      await row(page, "e2e-1", "completed").waitFor({ timeout: 1000 });
      const completedAfterMs = performance.now() - started;

      holders[1]?.complete("e2e-2", false, "simulated failure");
      const failed = row(page, "e2e-2", "failed");
      await failed.waitFor({ timeout: 1000 });

      await page.locator('#n-active:text-is("2")').waitFor({ timeout: 1000 });
      expect({
        completedAfterMs: completedAfterMs < 1000,
        failedText: await failed.textContent(),
        blocked: browser.blocked,
      }).toEqual({
        completedAfterMs: true,
        failedText: expect.stringContaining("simulated failure"),
        blocked: [],
      });
      console.log(`task row completed ${completedAfterMs.toFixed(0)} ms after taskComplete`);
    } finally {
      await page.close();
    }
  },
  TIMEOUT_MS,
);

test(
  "clicking a task shows its timeline: dispatch to its machine, status, output counts, its end",
  async () => {
    await using demo = await startTestDemo();
    const page = await browser.newPage();
    try {
      await openDashboard(page, demo.urls.dashboard);
      demo.server.spawnTask("e2e-tl", "timeline");
      const holder = await holderOf(demo, "e2e-tl");
      await row(page, "e2e-tl", "dispatched").waitFor({ timeout: 2000 });
      holder.statusChange("e2e-tl", "pending", "running");
      holder.taskOutput("e2e-tl", "line 1");
      holder.taskOutput("e2e-tl", "line 2");
      holder.complete("e2e-tl", false, "exit code 3");
      await row(page, "e2e-tl", "failed").click();
      const item = (kind: string) => page.locator(`#timeline li[data-kind="${kind}"]`);
      await item("failed").waitFor({ timeout: 3000 });
      const kinds = await page.locator("#timeline li").evaluateAll(
        // Runs in the page, over the list items in their order.
        (items) => items.map((li) => li.getAttribute("data-kind")),
      );
      expect({
        kinds,
        dispatched: await item("dispatched").textContent(),
        status: await item("statusReported").textContent(),
        failed: await item("failed").textContent(),
        heading: await page.locator("#h-timeline").textContent(),
        blocked: browser.blocked,
      }).toEqual({
        kinds: ["received", "dispatched", "statusReported", "failed"],
        dispatched: expect.stringContaining(holder.machineId.slice(0, 8)),
        status: expect.stringContaining("running"),
        failed: expect.stringMatching(/exit code 3.*result sent.*2 frames/),
        heading: expect.stringContaining("2 output frames"),
        blocked: [],
      });
      await page.locator("#timeline-close").click();
      expect(await page.locator("#p-timeline").isHidden()).toBe(true);
    } finally {
      await page.close();
    }
  },
  TIMEOUT_MS,
);

test(
  "screenshots at laptop (1280x800) and phone (390x844) widths while tasks flow",
  async () => {
    await using demo = await startTestDemo({
      ratePerSec: 4,
      runMs: [800, 3000],
      failRate: 0.25,
      flapEveryMs: [2000, 2500],
    });
    const page = await browser.newPage({ width: 1280, height: 800 });
    try {
      await openDashboard(page, demo.urls.dashboard);
      // Enough history for a representative picture: finished tasks of both kinds and a reconnect.
      await page.locator('tr[data-status="completed"]').first().waitFor({ timeout: 8000 });
      await page.locator('tr[data-status="failed"]').first().waitFor({ timeout: 8000 });
      await page.locator('li[data-event="reattached"]').first().waitFor({ timeout: 8000 });
      await screenshot(page, "dashboard-laptop");

      await page.setViewportSize({ width: 390, height: 844 });
      // A string, evaluated in the page: this file is type-checked without the DOM library.
      const overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth",
      );
      await screenshot(page, "dashboard-phone");
      await screenshot(page, "dashboard-phone-full", true);
      expect({ overflow, blocked: browser.blocked }).toEqual({ overflow: 0, blocked: [] });
    } finally {
      await page.close();
    }
  },
  TIMEOUT_MS,
);

test(
  "draining: the relay's mark and a drained machine's badge come and go with their drains",
  async () => {
    await using demo = await startTestDemo();
    const base = demo.urls.status.replace(/\/status$/, "");
    // No admin token in the demo: loopback clients may drain.
    const call = async (method: "POST" | "DELETE", path: string) => {
      const res = await fetch(`${base}${path}`, { method });
      expect(res.status).toBe(200);
    };
    const page = await browser.newPage();
    try {
      await openDashboard(page, demo.urls.dashboard);
      const machine = demo.daemons[0]?.machineId as string;
      const daemon = page.locator(`[data-machine-id="${machine}"]`);
      await daemon.waitFor({ timeout: 2000 });
      expect(await page.locator("#draining").isHidden()).toBe(true);
      expect(await daemon.getAttribute("data-draining")).toBe("false");

      await call("POST", "/drain");
      await page.locator("#draining").waitFor({ state: "visible", timeout: 2000 });
      await call("POST", `/daemons/${machine}/drain`);
      await page
        .locator(`[data-machine-id="${machine}"][data-draining="true"] .badge.draining`)
        .waitFor({ timeout: 2000 });
      // The other machines are not marked.
      expect(await page.locator('[data-draining="true"]').count()).toBe(1);

      await call("DELETE", `/daemons/${machine}/drain`);
      await page
        .locator(`[data-machine-id="${machine}"][data-draining="false"]`)
        .waitFor({ timeout: 2000 });
      await call("DELETE", "/drain");
      await page.locator("#draining").waitFor({ state: "hidden", timeout: 2000 });
      expect(browser.blocked).toEqual([]);
    } finally {
      await page.close();
    }
  },
  TIMEOUT_MS,
);

test(
  "polls the JSON API when the event stream cannot be opened",
  async () => {
    await using demo = await startTestDemo();
    const page = await browser.newPage();
    try {
      await page.route("**/dashboard/events*", (route) => route.abort("connectionrefused"));
      await page.goto(demo.urls.dashboard);
      await page.locator("#live.polling").waitFor({ timeout: 8000 });
      for (const d of demo.daemons) {
        await page.locator(`[data-machine-id="${d.machineId}"]`).waitFor({ timeout: 3000 });
      }
      demo.server.spawnTask("poll-1");
      await row(page, "poll-1", "dispatched").waitFor({ timeout: 3000 });
    } finally {
      await page.close();
    }
  },
  TIMEOUT_MS,
);

test(
  "with protected reads, the page's ?token= opens the page and its stream",
  async () => {
    const token = "dashboard-admin-token-123";
    await using demo = await startTestDemo({
      env: { MAKIMA_RELAY_ADMIN_TOKEN: token, MAKIMA_RELAY_PROTECT_READS: "true" },
    });
    const page = await browser.newPage();
    try {
      const refused = await page.goto(demo.urls.dashboard);
      expect(refused?.status()).toBe(401);
      const wrong = await page.goto(`${demo.urls.dashboard}?token=wrong`);
      expect(wrong?.status()).toBe(401);
      await openDashboard(page, `${demo.urls.dashboard}?token=${token}`);
      await page.locator("[data-machine-id]").nth(2).waitFor({ timeout: 2000 });
      // The query token is honoured on the dashboard's paths only.
      const status = await fetch(`${demo.urls.status}?token=${token}`);
      expect(status.status).toBe(401);
      expect(demo.logs.some((l) => JSON.stringify(l).includes(token))).toBe(false);
    } finally {
      await page.close();
    }
  },
  TIMEOUT_MS,
);
