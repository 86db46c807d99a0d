/** The access guard through the composed app: tokens, the loopback rule, protected reads. */
import { describe, expect, test } from "bun:test";
import { bearerToken, routeKind } from "../../src/http/access.ts";
import { createHttpApp } from "../../src/http/app.ts";
import { fakeDeps, json, OPEN, request, testApp } from "./fake-deps.ts";

const TOKEN = "s3cret-admin-token-0123456789";
const REMOTE = "10.0.0.5";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const post = (path: string, headers: Record<string, string> = {}) =>
  request(path, { method: "POST", headers });

/** Status, body, the challenge header, and how often the relay was told to reconnect. */
async function outcome(res: Response, state: { reconnects: number }) {
  return {
    status: res.status,
    body: await json(res),
    challenge: res.headers.get("www-authenticate"),
    reconnects: state.reconnects,
  };
}

describe("write routes with an admin token", () => {
  test.each([
    ["missing", {}],
    ["wrong", bearer("not-the-token")],
    ["a prefix of the right one", bearer(TOKEN.slice(0, -1))],
    ["right but another scheme", { authorization: `Basic ${TOKEN}` }],
    ["right but with no scheme", { authorization: TOKEN }],
  ])("token %s → 401 JSON with WWW-Authenticate: Bearer, nothing done", async (_, headers) => {
    const { deps, state } = fakeDeps();
    const res = await testApp(deps, { adminToken: TOKEN }).handle(post("/reconnect", headers));
    expect(await outcome(res, state)).toEqual({
      status: 401,
      body: { error: expect.any(String) },
      challenge: "Bearer",
      reconnects: 0,
    });
  });

  test.each(["127.0.0.1", REMOTE, "2001:db8::1"])("right token from %s → 200", async (peer) => {
    const { deps, state } = fakeDeps();
    const app = testApp(deps, { adminToken: TOKEN }, peer);
    const res = await app.handle(post("/reconnect", bearer(TOKEN)));
    expect(await outcome(res, state)).toEqual({
      status: 200,
      body: { success: true, message: "Reconnection initiated" },
      challenge: null,
      reconnects: 1,
    });
  });

  test("the scheme is case-insensitive (RFC 7235 §2.1)", async () => {
    const { deps, state } = fakeDeps();
    const app = testApp(deps, { adminToken: TOKEN });
    const res = await app.handle(post("/reconnect", { authorization: `bearer ${TOKEN}` }));
    expect({ status: res.status, reconnects: state.reconnects }).toEqual({
      status: 200,
      reconnects: 1,
    });
  });

  test("a 401 never echoes the token or the Authorization header sent", async () => {
    const app = testApp(fakeDeps().deps, { adminToken: TOKEN });
    const sent = "wrong-but-maybe-another-secret";
    for (const headers of [{}, bearer(sent), bearer(`${TOKEN}x`)]) {
      const res = await app.handle(post("/reconnect", headers));
      const text = `${[...res.headers].join("\n")}\n${await res.text()}`;
      expect({
        status: res.status,
        hasToken: text.includes(TOKEN),
        hasSent: text.includes(sent),
      }).toEqual({ status: 401, hasToken: false, hasSent: false });
    }
  });

  test("an unknown write path needs the token too, before routing (no route discovery)", async () => {
    const app = testApp(fakeDeps().deps, { adminToken: TOKEN }, REMOTE);
    const without = await app.handle(post("/no-such-route"));
    const withToken = await app.handle(post("/no-such-route", bearer(TOKEN)));
    expect([without.status, withToken.status]).toEqual([401, 404]);
  });

  test("reads stay open without protectReads", async () => {
    const app = testApp(fakeDeps().deps, { adminToken: TOKEN }, REMOTE);
    for (const path of ["/status", "/tasks", "/daemons", "/logs", "/swagger/json"]) {
      expect({ path, status: (await app.handle(request(path))).status }).toEqual({
        path,
        status: 200,
      });
    }
  });
});

describe("write routes without an admin token: loopback peers only", () => {
  test.each(["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])("%s → 200", async (peer) => {
    const { deps, state } = fakeDeps();
    const res = await testApp(deps, {}, peer).handle(post("/reconnect"));
    expect({ status: res.status, reconnects: state.reconnects }).toEqual({
      status: 200,
      reconnects: 1,
    });
  });

  test.each([REMOTE, "192.168.1.2", "::ffff:10.0.0.1", "2001:db8::1", "", "unknown"])(
    "%p → 403 naming MAKIMA_RELAY_ADMIN_TOKEN, nothing done",
    async (peer) => {
      const { deps, state } = fakeDeps();
      const res = await testApp(deps, {}, peer).handle(post("/reconnect"));
      expect(await outcome(res, state)).toEqual({
        status: 403,
        body: { error: expect.stringContaining("MAKIMA_RELAY_ADMIN_TOKEN") },
        challenge: null,
        reconnects: 0,
      });
    },
  );

  test("X-Forwarded-For, Forwarded and X-Real-IP are not trusted", async () => {
    const { deps, state } = fakeDeps();
    const res = await testApp(deps, {}, REMOTE).handle(
      post("/reconnect", {
        "x-forwarded-for": "127.0.0.1",
        forwarded: "for=127.0.0.1",
        "x-real-ip": "127.0.0.1",
      }),
    );
    expect({ status: res.status, reconnects: state.reconnects }).toEqual({
      status: 403,
      reconnects: 0,
    });
  });

  test("a request that did not come through fetch(req, peer) counts as remote", async () => {
    const { deps, state } = fakeDeps();
    const res = await createHttpApp(deps, OPEN).elysia.handle(post("/reconnect"));
    expect({ status: res.status, reconnects: state.reconnects }).toEqual({
      status: 403,
      reconnects: 0,
    });
  });

  test("reads answer any peer", async () => {
    const res = await testApp(fakeDeps().deps, {}, REMOTE).handle(request("/status"));
    expect(res.status).toBe(200);
  });
});

describe("protectReads", () => {
  const READS = [
    "/",
    "/status",
    "/tasks",
    "/tasks/t-1",
    "/daemons",
    "/logs",
    "/swagger",
    "/swagger/json",
    "/nope",
  ];

  test.each(READS)("GET %s: 401 without the token, not 401 with it", async (path) => {
    const app = testApp(fakeDeps().deps, { adminToken: TOKEN, protectReads: true }, REMOTE);
    const without = await app.handle(request(path));
    const withToken = await app.handle(request(path, { headers: bearer(TOKEN) }));
    expect({
      without: without.status,
      challenge: without.headers.get("www-authenticate"),
      body: await json(without),
      withToken: withToken.status,
    }).toEqual({
      without: 401,
      challenge: "Bearer",
      body: { error: expect.any(String) },
      // /tasks/t-1 and /nope are 404s: past the guard, to the router.
      withToken: ["/tasks/t-1", "/nope"].includes(path) ? 404 : 200,
    });
  });

  test("GET /status: 401 without, 401 with a wrong token, 200 with the right one", async () => {
    const app = testApp(fakeDeps().deps, { adminToken: TOKEN, protectReads: true });
    const statuses = [];
    for (const headers of [{}, bearer("nope"), bearer(TOKEN)]) {
      statuses.push((await app.handle(request("/status", { headers }))).status);
    }
    expect(statuses).toEqual([401, 401, 200]);
  });

  test.each(["/health", "/health/"])(
    "GET %s answers without a token, from anywhere",
    async (path) => {
      const app = testApp(fakeDeps().deps, { adminToken: TOKEN, protectReads: true }, REMOTE);
      const res = await app.handle(request(path));
      expect({ status: res.status, body: await json(res) }).toEqual({
        status: 200,
        body: { healthy: true, upstreamConnected: true },
      });
    },
  );

  test("/health is not a way around the token for other methods", async () => {
    const app = testApp(fakeDeps().deps, { adminToken: TOKEN, protectReads: true });
    expect((await app.handle(post("/health"))).status).toBe(401);
  });

  test("without a token configured, protected reads are loopback-only", async () => {
    const { deps } = fakeDeps();
    const remote = testApp(deps, { protectReads: true }, REMOTE);
    const local = testApp(deps, { protectReads: true }, "::1");
    const remoteStatus = await remote.handle(request("/status"));
    expect({
      remote: remoteStatus.status,
      error: (await json(remoteStatus)).error,
      local: (await local.handle(request("/status"))).status,
      health: (await remote.handle(request("/health"))).status,
    }).toEqual({
      remote: 403,
      error: expect.stringContaining("MAKIMA_RELAY_ADMIN_TOKEN"),
      local: 200,
      health: 200,
    });
  });
});

describe("helpers", () => {
  test.each([
    ["GET", "/health", "probe"],
    ["HEAD", "/health", "probe"],
    ["GET", "/healthz", "read"],
    ["GET", "/swagger/json", "read"],
    ["HEAD", "/status", "read"],
    ["POST", "/reconnect", "write"],
    ["POST", "/health", "write"],
    ["DELETE", "/tasks/x", "write"],
    ["PATCH", "/anything", "write"],
    ["get", "/status", "write"],
    ["OPTIONS", "/reconnect", "preflight"],
  ])("routeKind(%s, %s) = %s", (method, path, kind) => {
    expect(routeKind(method, path)).toBe(kind as ReturnType<typeof routeKind>);
  });

  test.each([
    [null, null],
    ["", null],
    ["Bearer", null],
    ["Bearer ", null],
    ["Bearer abc", "abc"],
    ["bearer abc", "abc"],
    ["BEARER\tabc ", "abc"],
    ["Bearer a b", null],
    ["Basic abc", null],
    ["Bearerabc", null],
  ])("bearerToken(%p) = %p", (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
});
