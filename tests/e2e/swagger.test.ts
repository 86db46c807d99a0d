/**
 * /swagger with every outbound request blocked: the docs UI must render the
 * route list from what the relay itself serves (the embedded Scalar bundle at
 * /swagger/scalar.js), as on a host without internet.
 */
import { expect, test } from "bun:test";
import { startTestRelay } from "../helpers/relay.ts";
import { isLocalUrl, launchBrowser, screenshot } from "./browser.ts";

test("/swagger renders the route list offline", async () => {
  await using relay = await startTestRelay({ env: { MAKIMA_RELAY_LOG_LEVEL: "warn" } });
  await using browser = await launchBrowser();
  const page = await browser.newPage({ width: 1280, height: 800 });
  const scripts: string[] = [];
  page.on("request", (req) => {
    if (req.resourceType() === "script") scripts.push(req.url());
  });
  const res = await page.goto(`${relay.url}/swagger`);
  expect(res?.status()).toBe(200);
  // Scalar lists every tag of the document and opens the first one's operations.
  await page.getByText("Relay status", { exact: true }).first().waitFor({ timeout: 10_000 });
  for (const tag of ["tasks", "daemons", "logs", "admin", "websocket"]) {
    await page.getByRole("button", { name: `Open Group - ${tag}` }).waitFor({ timeout: 5000 });
  }
  await page.getByRole("button", { name: "Open Group - daemons" }).click();
  await page.getByText("Connected daemons", { exact: true }).first().waitFor({ timeout: 5000 });
  await screenshot(page, "swagger-laptop");
  expect({
    scripts: scripts.every(isLocalUrl),
    bundle: scripts.some((u) => new URL(u).pathname === "/swagger/scalar.js"),
    blocked: browser.blocked,
  }).toEqual({ scripts: true, bundle: true, blocked: [] });
}, 30_000);
