/**
 * Operator-API controls over a real socket: the admin token on POST /reconnect,
 * the loopback rule fed by Bun's peer address, and a token that shows up in no
 * log line and no API answer.
 */
import { describe, expect, test } from "bun:test";
import { networkInterfaces } from "node:os";
import { startSimServer } from "../../src/sim/index.ts";
import { startTestRelay } from "../helpers/relay.ts";

const TOKEN = "integration-admin-token-5f2c9a71";
const WRONG = "wrong-admin-token-0b8e44d2";

/** An address of this machine that is not loopback, to be a remote client of ourselves. */
const externalIPv4 = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === "IPv4" && !i.internal)?.address;

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

describe("POST /reconnect without a token: loopback clients only", () => {
  test.skipIf(!externalIPv4)(
    "200 from 127.0.0.1, 403 from this machine's own non-loopback address",
    async () => {
      await using relay = await startTestRelay({ env: { MAKIMA_RELAY_HOST: "0.0.0.0" } });
      const local = await post(`http://127.0.0.1:${relay.port}/reconnect`);
      // X-Forwarded-For must not turn a remote client into a local one.
      const remote = await post(`http://${externalIPv4}:${relay.port}/reconnect`, {
        "x-forwarded-for": "127.0.0.1",
      });
      expect([
        { status: local.status },
        { status: remote.status, body: await remote.json() },
      ]).toEqual([
        { status: 200 },
        {
          status: 403,
          body: { error: expect.stringContaining("MAKIMA_RELAY_ADMIN_TOKEN") },
        },
      ]);
    },
  );

  test.skipIf(!externalIPv4)("with a token, a remote client is let in by the token", async () => {
    await using relay = await startTestRelay({
      env: { MAKIMA_RELAY_HOST: "0.0.0.0", MAKIMA_RELAY_ADMIN_TOKEN: TOKEN },
    });
    const res = await post(`http://${externalIPv4}:${relay.port}/reconnect`, {
      authorization: `Bearer ${TOKEN}`,
    });
    expect(res.status).toBe(200);
  });
});
