/**
 * Chromium driven by playwright-core, with every request that does not go to
 * this machine aborted (and recorded), so a page that needs the internet fails
 * here as it would on an offline host. Which Chromium: chromium-path.ts (Debian's
 * when installed, else the one an npm dev dependency ships); without one these
 * tests fail, they never skip.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { REPO_ROOT } from "../helpers/binary.ts";
import { findChromium } from "./chromium-path.ts";

export const SCREENSHOT_DIR = join(REPO_ROOT, "test-results", "screenshots");

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

export interface TestBrowser {
  context: BrowserContext;
  /** URLs of the requests that were aborted because they left the machine. */
  blocked: string[];
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  [Symbol.asyncDispose](): Promise<void>;
}

export function isLocalUrl(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === "data:" || protocol === "about:" || protocol === "blob:") return true;
  return LOCAL_HOSTS.has(hostname);
}

export async function launchBrowser(): Promise<TestBrowser> {
  const chromiumExecutable = await findChromium();
  // A fresh profile each run: nothing cached or remembered from an earlier one.
  const profile = mkdtempSync(join(tmpdir(), "makima-relay-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumExecutable.path,
    env: { ...process.env, ...chromiumExecutable.env },
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 },
  });
  const blocked: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (isLocalUrl(url)) return route.continue();
    blocked.push(url);
    return route.abort("internetdisconnected");
  });
  return {
    context,
    blocked,
    async newPage(viewport) {
      const page = await context.newPage();
      if (viewport) await page.setViewportSize(viewport);
      return page;
    },
    async [Symbol.asyncDispose]() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string, fullPage = false): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}
