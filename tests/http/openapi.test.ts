import { describe, expect, test } from "bun:test";
import { fakeDeps, json, request, testApp } from "./fake-deps.ts";

const ROUTES: [path: string, method: string, statuses: string[]][] = [
  ["/", "get", ["200"]],
  ["/status", "get", ["200"]],
  ["/health", "get", ["200"]],
  ["/tasks", "get", ["200", "400"]],
  ["/tasks/{taskId}", "get", ["200", "404"]],
  ["/tasks/{taskId}/events", "get", ["200", "404"]],
  ["/daemons", "get", ["200"]],
  ["/logs", "get", ["200", "400"]],
  ["/reconnect", "post", ["200"]],
];

async function spec() {
  const res = await testApp(fakeDeps().deps).handle(request("/swagger/json"));
  expect(res.status).toBe(200);
  return json(res);
}

describe("OpenAPI", () => {
  test("/swagger/json is an OpenAPI 3 document titled makima-relay with the deps' version", async () => {
    const doc = await spec();
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: "makima-relay", version: "9.8.7" });
    expect(doc.tags.map((t: { name: string }) => t.name)).toEqual(
      expect.arrayContaining(["status", "tasks", "daemons", "logs", "admin", "websocket"]),
    );
    expect(doc.tags.find((t: { name: string }) => t.name === "websocket").description).toContain(
      "/ws/daemon",
    );
  });

  test.each(ROUTES)(
    "%s %s is documented with summary, tags and response schemas",
    async (path, method, statuses) => {
      const op = (await spec()).paths[path]?.[method];
      expect(op).toBeDefined();
      expect(op.summary).toEqual(expect.any(String));
      expect(op.tags).toHaveLength(1);
      for (const code of statuses) {
        const schema = op.responses[code]?.content?.["application/json"]?.schema;
        expect({ code, type: schema?.type }).toEqual({ code, type: "object" });
      }
    },
  );

  // @elysiajs/openapi puts a parameter's description in its schema only; API browsers read
  // parameters[].description, so the relay copies it there.
  test("query parameters carry descriptions; the path parameter is documented", async () => {
    const { paths } = await spec();
    const params = (p: string) =>
      Object.fromEntries(
        paths[p].get.parameters.map((x: { name: string; in: string; description?: string }) => [
          x.name,
          { in: x.in, described: (x.description ?? "").length > 0 },
        ]),
      );
    expect(params("/tasks")).toEqual({
      limit: { in: "query", described: true },
      offset: { in: "query", described: true },
      status: { in: "query", described: true },
    });
    expect(params("/logs")).toEqual({ limit: { in: "query", described: true } });
    expect(params("/tasks/{taskId}").taskId).toEqual({ in: "path", described: true });
    expect(params("/tasks/{taskId}/events").taskId).toEqual({ in: "path", described: true });
  });

  test("counts are documented as plain integers, not Elysia's coercing string|integer", async () => {
    const { paths } = await spec();
    const props =
      paths["/status"].get.responses["200"].content["application/json"].schema.properties;
    expect(props.connectedDaemons).toEqual({ minimum: 0, type: "integer" });
  });

  test("the daemon WebSocket is described, and the docs routes themselves are hidden", async () => {
    const { paths } = await spec();
    expect(paths["/ws/daemon"].get.tags).toEqual(["websocket"]);
    expect(Object.keys(paths).filter((p) => p.startsWith("/swagger"))).toEqual([]);
  });

  test("POST /reconnect documents the bearer admin token and its 401/403", async () => {
    const doc = await spec();
    const op = doc.paths["/reconnect"].post;
    expect({
      scheme: doc.components.securitySchemes.adminToken,
      security: op.security,
      errors: ["401", "403"].map((c) => Object.keys(op.responses[c]?.content ?? {})),
    }).toEqual({
      scheme: expect.objectContaining({ type: "http", scheme: "bearer" }),
      security: [{ adminToken: [] }],
      errors: [["application/json"], ["application/json"]],
    });
  });

  test("/swagger serves an HTML page that points at the spec", async () => {
    const res = await testApp(fakeDeps().deps).handle(request("/swagger"));
    const html = await res.text();
    expect({ status: res.status, type: res.headers.get("content-type") }).toEqual({
      status: 200,
      type: expect.stringContaining("text/html"),
    });
    expect(html).toContain("<title>makima-relay</title>");
    expect(html).toContain("swagger/json");
  });
});
