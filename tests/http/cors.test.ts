/** CORS from the origin allow-list: echo for listed origins, `*` for reads only, nothing else. */
import { describe, expect, test } from "bun:test";
import { fakeDeps, json, request, testApp } from "./fake-deps.ts";

const UI = "https://ui.example";
const OTHER = "https://evil.example";

/** The CORS-relevant headers of a response, absent ones left out. */
function corsOf(res: Response): Record<string, string> {
  return Object.fromEntries(
    [...res.headers].filter(([k]) => k.startsWith("access-control-") || k === "vary"),
  );
}

const preflight = (path: string, origin: string, method: string) =>
  request(path, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      "access-control-request-headers": "authorization",
    },
  });

describe("preflight (OPTIONS)", () => {
  test.each([
    ["GET", "/status"],
    ["POST", "/reconnect"],
  ])("a listed origin, %s %s → 204 echoing the origin", async (method, path) => {
    const { deps, state } = fakeDeps();
    const res = await testApp(deps, { corsOrigins: [UI] }).handle(preflight(path, UI, method));
    expect({ status: res.status, cors: corsOf(res), reconnects: state.reconnects }).toEqual({
      status: 204,
      cors: {
        "access-control-allow-origin": UI,
        "access-control-allow-methods": "GET, HEAD, POST, OPTIONS",
        "access-control-allow-headers": "Authorization, Content-Type",
        "access-control-max-age": "600",
        vary: "Origin",
      },
      reconnects: 0,
    });
  });

  test.each([
    ["the default (empty) list", []],
    ["a list without it", [UI]],
  ])("an unlisted origin with %s → 403 JSON, no CORS headers", async (_, corsOrigins) => {
    const app = testApp(fakeDeps().deps, { corsOrigins });
    for (const [path, method] of [
      ["/status", "GET"],
      ["/reconnect", "POST"],
    ] as const) {
      const res = await app.handle(preflight(path, OTHER, method));
      expect({ path, status: res.status, body: await json(res), cors: corsOf(res) }).toEqual({
        path,
        status: 403,
        body: { error: expect.any(String) },
        cors: {},
      });
    }
  });

  test("`*` allows any origin to read, with read methods only", async () => {
    const res = await testApp(fakeDeps().deps, { corsOrigins: ["*"] }).handle(
      preflight("/status", OTHER, "GET"),
    );
    expect({ status: res.status, cors: corsOf(res) }).toEqual({
      status: 204,
      cors: {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET, HEAD, OPTIONS",
        "access-control-allow-headers": "Authorization, Content-Type",
        "access-control-max-age": "600",
      },
    });
  });

  test("`*` never covers a write route: an unlisted origin's POST preflight is a 403", async () => {
    const res = await testApp(fakeDeps().deps, { corsOrigins: ["*", UI] }).handle(
      preflight("/reconnect", OTHER, "POST"),
    );
    expect({ status: res.status, cors: corsOf(res) }).toEqual({ status: 403, cors: {} });
  });

  test("a preflight needs no token, even with protected reads", async () => {
    const app = testApp(fakeDeps().deps, {
      corsOrigins: [UI],
      adminToken: "tok",
      protectReads: true,
    });
    const res = await app.handle(preflight("/status", UI, "GET"));
    expect(res.status).toBe(204);
  });
});

describe("actual requests", () => {
  test("a listed origin is echoed with Vary: Origin on reads, writes and errors", async () => {
    const { deps, state } = fakeDeps();
    const app = testApp(deps, { corsOrigins: [OTHER, UI] });
    const headers = { origin: UI };
    for (const req of [
      request("/status", { headers }),
      request("/tasks?limit=abc", { headers }),
      request("/nope", { headers }),
      request("/reconnect", { method: "POST", headers }),
    ]) {
      const res = await app.handle(req);
      expect({ url: req.url, cors: corsOf(res) }).toEqual({
        url: req.url,
        cors: { "access-control-allow-origin": UI, vary: "Origin" },
      });
    }
    expect(state.reconnects).toBe(1);
  });

  test("an allowed origin can read the 401 it gets", async () => {
    const app = testApp(fakeDeps().deps, { corsOrigins: [UI], adminToken: "tok" });
    const res = await app.handle(
      request("/reconnect", { method: "POST", headers: { origin: UI } }),
    );
    expect({ status: res.status, cors: corsOf(res) }).toEqual({
      status: 401,
      cors: { "access-control-allow-origin": UI, vary: "Origin" },
    });
  });

  test("settings are matched without a trailing slash or case", async () => {
    const app = testApp(fakeDeps().deps, { corsOrigins: ["HTTPS://UI.example/"] });
    const res = await app.handle(request("/status", { headers: { origin: UI } }));
    expect(corsOf(res)).toEqual({ "access-control-allow-origin": UI, vary: "Origin" });
  });

  test("an unlisted origin gets no CORS headers on a read", async () => {
    const app = testApp(fakeDeps().deps, { corsOrigins: [UI] });
    const res = await app.handle(request("/status", { headers: { origin: OTHER } }));
    expect({ status: res.status, cors: corsOf(res) }).toEqual({ status: 200, cors: {} });
  });

  test("`*`: reads get `*` for any origin; a write from an unlisted origin gets nothing", async () => {
    const { deps, state } = fakeDeps();
    const app = testApp(deps, { corsOrigins: ["*"] });
    const read = await app.handle(request("/status", { headers: { origin: OTHER } }));
    const write = await app.handle(
      request("/reconnect", { method: "POST", headers: { origin: OTHER } }),
    );
    expect({
      read: corsOf(read),
      write: { status: write.status, cors: corsOf(write), reconnects: state.reconnects },
    }).toEqual({
      read: { "access-control-allow-origin": "*" },
      write: { status: 403, cors: {}, reconnects: 0 },
    });
  });

  // A form or fetch(…, {mode: "no-cors"}) POST is sent without a preflight; without a token,
  // loopback is trusted and the operator's browser is on loopback (cross-site request forgery).
  test("a write from an unlisted origin is refused even from loopback", async () => {
    const { deps, state } = fakeDeps();
    const res = await testApp(deps, {}, "127.0.0.1").handle(
      request("/reconnect", {
        method: "POST",
        headers: { origin: OTHER, "content-type": "text/plain" },
        body: "x",
      }),
    );
    expect({ status: res.status, body: await json(res), reconnects: state.reconnects }).toEqual({
      status: 403,
      body: { error: expect.any(String) },
      reconnects: 0,
    });
  });

  test("a same-origin write (a page the relay serves) needs no listing", async () => {
    const { deps, state } = fakeDeps();
    const res = await testApp(deps).handle(
      request("/reconnect", { method: "POST", headers: { origin: "http://localhost" } }),
    );
    expect({ status: res.status, cors: corsOf(res), reconnects: state.reconnects }).toEqual({
      status: 200,
      cors: {},
      reconnects: 1,
    });
  });
});
