import { describe, expect, test } from "bun:test";
import { fakeDeps, json, request, testApp } from "./fake-deps.ts";

/** Every CORS response header the app may send, for "none at all" checks. */
function corsOf(res: Response) {
  return [...res.headers.keys()].filter((k) => k.startsWith("access-control-"));
}

describe("the composed app", () => {
  test.each(["/nope", "/tasks/a/b", "/swagger/nope"])(
    "unknown path %s → JSON 404",
    async (path) => {
      const res = await testApp(fakeDeps().deps).handle(request(path));
      expect({
        status: res.status,
        type: res.headers.get("content-type"),
        body: await json(res),
      }).toEqual({
        status: 404,
        type: expect.stringContaining("application/json"),
        body: { error: "Not found" },
      });
    },
  );

  // The allow-all CORS of the original is gone: no origin is allowed unless configured.
  test("by default no CORS headers, on success, on 400 and on 404, even for an Origin", async () => {
    const app = testApp(fakeDeps().deps);
    for (const path of ["/status", "/tasks?limit=abc", "/nope"]) {
      const res = await app.handle(request(path, { headers: { origin: "https://ui.example" } }));
      expect({ path, cors: corsOf(res) }).toEqual({ path, cors: [] });
    }
  });

  test.each(["/status", "/reconnect", "/anything"])(
    "OPTIONS %s without an Origin (not a preflight) → 204, no CORS, no action",
    async (path) => {
      const { deps, state } = fakeDeps();
      const res = await testApp(deps).handle(request(path, { method: "OPTIONS" }));
      expect({
        status: res.status,
        body: await res.text(),
        cors: corsOf(res),
        reconnects: state.reconnects,
      }).toEqual({ status: 204, body: "", cors: [], reconnects: 0 });
    },
  );

  test("a bug in a deps call is a JSON 500 without details, reported to the operator", async () => {
    const { deps } = fakeDeps();
    const boom = new Error("database is locked at /var/lib/secret.db");
    deps.listDaemons = () => {
      throw boom;
    };
    const reported: unknown[] = [];
    deps.reportError = (error, where) => reported.push([error, where]);
    const res = await testApp(deps).handle(request("/daemons"));
    expect({ status: res.status, body: await json(res) }).toEqual({
      status: 500,
      body: { error: "Internal error" },
    });
    expect(reported).toEqual([[boom, { method: "GET", path: "/daemons" }]]);
  });

  test("unknown query parameters are ignored (cache busters)", async () => {
    const app = testApp(fakeDeps().deps);
    for (const path of ["/tasks?_=123", "/logs?limit=5&x=1", "/status?v=2"]) {
      expect((await app.handle(request(path))).status).toBe(200);
    }
  });

  test("a repeated parameter is a 400 naming it", async () => {
    const res = await testApp(fakeDeps().deps).handle(request("/tasks?limit=1&limit=2"));
    expect({ status: res.status, error: (await json(res)).error }).toEqual({
      status: 400,
      error: expect.stringContaining("'limit'"),
    });
  });

  test("POST /reconnect ignores whatever body it is sent", async () => {
    const { deps, state } = fakeDeps();
    const res = await testApp(deps).handle(
      request("/reconnect", {
        method: "POST",
        body: "{not json",
        headers: { "content-type": "application/json" },
      }),
    );
    expect({ status: res.status, calls: state.reconnects }).toEqual({ status: 200, calls: 1 });
  });

  test("a response that breaks its own schema is a 500, not a half-valid body", async () => {
    const { deps, state } = fakeDeps();
    state.counters = { ...state.counters, activeTasks: -1 };
    const res = await testApp(deps).handle(request("/status"));
    expect({ status: res.status, body: await json(res) }).toEqual({
      status: 500,
      body: { error: "Internal error" },
    });
  });

  test("two apps in one process keep their own deps", async () => {
    const a = fakeDeps();
    const b = fakeDeps();
    b.deps.reconnect = () => ({ success: false, message: "b" });
    await testApp(a.deps).handle(request("/reconnect", { method: "POST" }));
    const res = await testApp(b.deps).handle(request("/reconnect", { method: "POST" }));
    expect({ a: a.state.reconnects, b: (await json(res)).message }).toEqual({ a: 1, b: "b" });
  });
});
