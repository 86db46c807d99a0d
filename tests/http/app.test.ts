import { describe, expect, test } from "bun:test";
import { createHttpApp } from "../../src/http/app.ts";
import { fakeDeps, json, request } from "./fake-deps.ts";

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "Content-Type, Authorization",
};

function corsOf(res: Response) {
  return Object.fromEntries(Object.keys(CORS).map((k) => [k, res.headers.get(k)]));
}

describe("the composed app", () => {
  test.each(["/nope", "/tasks/a/b", "/swagger/nope"])(
    "unknown path %s → JSON 404",
    async (path) => {
      const res = await createHttpApp(fakeDeps().deps).handle(request(path));
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

  test("CORS headers on success, on 400 and on 404", async () => {
    const app = createHttpApp(fakeDeps().deps);
    for (const path of ["/status", "/tasks?limit=abc", "/nope"]) {
      expect(corsOf(await app.handle(request(path)))).toEqual(CORS);
    }
  });

  test.each(["/status", "/reconnect", "/anything"])("OPTIONS %s → 204 with CORS", async (path) => {
    const { deps, state } = fakeDeps();
    const res = await createHttpApp(deps).handle(request(path, { method: "OPTIONS" }));
    expect({ status: res.status, body: await res.text(), cors: corsOf(res) }).toEqual({
      status: 204,
      body: "",
      cors: CORS,
    });
    expect(state.reconnects).toBe(0);
  });

  test("a bug in a deps call is a JSON 500 without details, reported to the operator", async () => {
    const { deps } = fakeDeps();
    const boom = new Error("database is locked at /var/lib/secret.db");
    deps.listDaemons = () => {
      throw boom;
    };
    const reported: unknown[] = [];
    deps.reportError = (error, where) => reported.push([error, where]);
    const res = await createHttpApp(deps).handle(request("/daemons"));
    expect({ status: res.status, body: await json(res) }).toEqual({
      status: 500,
      body: { error: "Internal error" },
    });
    expect(reported).toEqual([[boom, { method: "GET", path: "/daemons" }]]);
  });

  test("unknown query parameters are ignored (cache busters)", async () => {
    const app = createHttpApp(fakeDeps().deps);
    for (const path of ["/tasks?_=123", "/logs?limit=5&x=1", "/status?v=2"]) {
      expect((await app.handle(request(path))).status).toBe(200);
    }
  });

  test("a repeated parameter is a 400 naming it", async () => {
    const res = await createHttpApp(fakeDeps().deps).handle(request("/tasks?limit=1&limit=2"));
    expect({ status: res.status, error: (await json(res)).error }).toEqual({
      status: 400,
      error: expect.stringContaining("'limit'"),
    });
  });

  test("POST /reconnect ignores whatever body it is sent", async () => {
    const { deps, state } = fakeDeps();
    const res = await createHttpApp(deps).handle(
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
    const res = await createHttpApp(deps).handle(request("/status"));
    expect({ status: res.status, body: await json(res) }).toEqual({
      status: 500,
      body: { error: "Internal error" },
    });
  });

  test("two apps in one process keep their own deps", async () => {
    const a = fakeDeps();
    const b = fakeDeps();
    b.deps.reconnect = () => ({ success: false, message: "b" });
    await createHttpApp(a.deps).handle(request("/reconnect", { method: "POST" }));
    const res = await createHttpApp(b.deps).handle(request("/reconnect", { method: "POST" }));
    expect({ a: a.state.reconnects, b: (await json(res)).message }).toEqual({ a: 1, b: "b" });
  });
});
