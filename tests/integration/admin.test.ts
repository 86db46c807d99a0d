/**
 * Operator-API controls over a real socket: the admin token on POST /reconnect,
 * the loopback rule fed by Bun's peer address, and a token that shows up in no
 * log line and no API answer.
 */
import { describe, expect, test } from "bun:test";
import { startSimServer } from "../../src/sim/index.ts";
import { startTestRelay } from "../helpers/relay.ts";

const TOKEN = "integration-admin-token-5f2c9a71";
const WRONG = "wrong-admin-token-0b8e44d2";

const post = (url: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers });

describe("POST /reconnect with MAKIMA_RELAY_ADMIN_TOKEN", () => {
  test("401 without or with a wrong token, 200 with it; the token leaks nowhere", async () => {
    await using server = startSimServer();
    await using relay = await startTestRelay({
      env: { MAKIMA_SERVER_URL: server.url, MAKIMA_RELAY_ADMIN_TOKEN: TOKEN },
    });
    const authenticated = (l: Record<string, unknown>) => l.event === "authenticated";
    await relay.logs.waitFor(authenticated);
    const url = `${relay.url}/reconnect`;

    const missing = await post(url);
    const wrong = await post(url, { authorization: `Bearer ${WRONG}` });
    const right = await post(url, { authorization: `Bearer ${TOKEN}` });
    expect([
      { status: missing.status, challenge: missing.headers.get("www-authenticate") },
      { status: wrong.status, challenge: wrong.headers.get("www-authenticate") },
      { status: right.status, body: await right.json() },
    ]).toEqual([
      { status: 401, challenge: "Bearer" },
      { status: 401, challenge: "Bearer" },
      { status: 200, body: { success: true, message: "Reconnection initiated" } },
    ]);
    // The reconnect really happened: a second authentication after the first.
    const first = relay.logs.items.findIndex(authenticated);
    await relay.logs.waitFor(authenticated, 5000, first + 1);

    const answers = [
      await missing.text(),
      await wrong.text(),
      await (await relay.get("/status")).text(),
      await (await relay.get("/logs?limit=200")).text(),
    ].join("\n");
    const lines = relay.logs.items.map((l) => JSON.stringify(l)).join("\n");
    // "[redacted]" would mean something tried to log the token and only the mask saved it.
    expect({
      tokenInAnswers: answers.includes(TOKEN),
      wrongInAnswers: answers.includes(WRONG),
      tokenInLogs: lines.includes(TOKEN),
      wrongInLogs: lines.includes(WRONG),
      maskedInLogs: lines.includes("[redacted]"),
    }).toEqual({
      tokenInAnswers: false,
      wrongInAnswers: false,
      tokenInLogs: false,
      wrongInLogs: false,
      maskedInLogs: false,
    });
  });

  test("reads stay open; with MAKIMA_RELAY_PROTECT_READS, /status needs the token, /health never", async () => {
    await using relay = await startTestRelay({
      env: { MAKIMA_RELAY_ADMIN_TOKEN: TOKEN, MAKIMA_RELAY_PROTECT_READS: "true" },
    });
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect({
      status: (await relay.get("/status")).status,
      statusWithToken: (await relay.get("/status", { headers: auth })).status,
      health: (await relay.get("/health")).status,
    }).toEqual({ status: 401, statusWithToken: 200, health: 200 });
  });
});

// The remote-peer rule is unit-tested with non-loopback addresses (tests/http/access.test.ts);
// socket tests stay on loopback.
describe("POST /reconnect without a token: local callers only", () => {
  test("200 for a loopback caller addressing localhost; 403 when Host names another site", async () => {
    await using relay = await startTestRelay();
    const local = await post(`http://127.0.0.1:${relay.port}/reconnect`);
    const named = await post(`http://localhost:${relay.port}/reconnect`);
    // A page on evil.example whose name resolves to 127.0.0.1 (DNS rebinding) still sends its Host.
    const rebound = await post(`http://127.0.0.1:${relay.port}/reconnect`, {
      host: `evil.example:${relay.port}`,
    });
    expect([local.status, named.status, rebound.status]).toEqual([200, 200, 403]);
    const body = (await rebound.json()) as { error: string };
    expect(body.error).toContain("MAKIMA_RELAY_ADMIN_TOKEN");
  });

  test("with a token, the token decides whatever the Host", async () => {
    await using relay = await startTestRelay({ env: { MAKIMA_RELAY_ADMIN_TOKEN: TOKEN } });
    const res = await post(`http://127.0.0.1:${relay.port}/reconnect`, {
      host: `relay.example:${relay.port}`,
      authorization: `Bearer ${TOKEN}`,
    });
    expect(res.status).toBe(200);
  });
});
