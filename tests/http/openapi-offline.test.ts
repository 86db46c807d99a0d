/**
 * The API docs work without the internet: /swagger loads Scalar from the relay
 * itself, Scalar's network features are off, and the spec documents every
 * route (including /metrics) and the daemon WebSocket protocol.
 */
import { describe, expect, test } from "bun:test";
import { ERROR_CODES } from "../../src/protocol/messages.ts";
import { fakeDeps, json, request, testApp } from "./fake-deps.ts";

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

interface Operation {
  summary?: string;
  tags?: string[];
  parameters?: { name: string; description?: string; schema?: { description?: string } }[];
  responses?: Record<string, { description?: string; content?: Record<string, unknown> }>;
}

async function spec() {
  return json(await testApp(fakeDeps().deps).handle(request("/swagger/json")));
}

function operations(paths: Record<string, Record<string, Operation>>) {
  return Object.entries(paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m) => ({
      route: `${m} ${path}`,
      op: item[m] as Operation,
    })),
  );
}

async function page(): Promise<{ status: number; type: string | null; html: string }> {
  const res = await testApp(fakeDeps().deps).handle(request("/swagger"));
  return { status: res.status, type: res.headers.get("content-type"), html: await res.text() };
}

describe("OpenAPI document", () => {
  test("documents GET /metrics as Prometheus text under the metrics tag", async () => {
    const doc = await spec();
    const op = doc.paths["/metrics"]?.get;
    expect({
      tag: doc.tags.some((t: { name: string }) => t.name === "metrics"),
      summary: op?.summary,
      tags: op?.tags,
      schema: op?.responses["200"]?.content?.["text/plain"]?.schema?.type,
    }).toEqual({ tag: true, summary: "Prometheus metrics", tags: ["metrics"], schema: "string" });
  });

  test("every operation has a summary, one tag, described responses and parameters", async () => {
    const ops = operations((await spec()).paths);
    const problems = ops.flatMap(({ route, op }) => [
      ...(op.summary ? [] : [`${route}: no summary`]),
      ...(op.tags?.length === 1 ? [] : [`${route}: tags ${JSON.stringify(op.tags)}`]),
      ...(Object.keys(op.responses ?? {}).length > 0 ? [] : [`${route}: no responses`]),
      ...Object.entries(op.responses ?? {})
        .filter(([, r]) => !r.description && !r.content)
        .map(([code]) => `${route}: response ${code} undescribed`),
      ...(op.parameters ?? [])
        .filter((p) => !p.description)
        .map((p) => `${route}: parameter ${p.name} undescribed`),
    ]);
    expect({ problems, routes: ops.length }).toEqual({
      problems: [],
      routes: expect.any(Number),
    });
    expect(ops.map((o) => o.route)).toEqual(
      expect.arrayContaining(["get /metrics", "get /status", "post /reconnect", "get /ws/daemon"]),
    );
  });

  test("describes the WebSocket protocol: messages, error codes and close codes", async () => {
    const doc = await spec();
    const schemas = doc.components.schemas;
    const wsTag = doc.tags.find((t: { name: string }) => t.name === "websocket").description;
    const oneOf = (name: string) =>
      schemas[name].oneOf.map((r: { $ref: string }) => r.$ref.split("/").at(-1));
    expect({
      fromDaemon: oneOf("WsDaemonToRelay"),
      toDaemon: oneOf("WsRelayToDaemon"),
      errorCodes: schemas.WsError.properties.code.enum,
      controls: schemas.WsControlCommand.properties.type.enum,
      authRequired: schemas.WsAuthenticate.required,
      closeCodes: ["1001", "1009", "4401", "4408", "4409"].filter((c) =>
        wsTag.includes(`| ${c} |`),
      ),
    }).toEqual({
      fromDaemon: [
        "WsAuthenticate",
        "WsHeartbeat",
        "WsTaskStatusChange",
        "WsTaskOutput",
        "WsTaskProgress",
        "WsTaskComplete",
        "WsCapacityUpdate",
      ],
      toDaemon: ["WsAuthenticated", "WsSpawnTask", "WsControlCommand", "WsError"],
      errorCodes: [...ERROR_CODES],
      controls: ["pauseTask", "resumeTask", "interruptTask", "sendMessage"],
      authRequired: ["type", "apiKey", "machineId", "hostname", "maxConcurrentTasks"],
      closeCodes: ["1001", "1009", "4401", "4408", "4409"],
    });
  });
});

describe("/swagger without the internet", () => {
  test("the page loads its script from the relay, never from a CDN", async () => {
    const { status, type, html } = await page();
    const scripts = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]*)"/g)].map((m) => m[1]);
    const remote = [...html.matchAll(/\b(?:src|href)="((?:https?:)?\/\/[^"]*)"/g)].map((m) => m[1]);
    expect({ status, type, scripts, remote }).toEqual({
      status: 200,
      type: expect.stringContaining("text/html"),
      scripts: ["swagger/scalar.js"],
      remote: [],
    });
  });

  test("Scalar's own network features are switched off in the page's configuration", async () => {
    const { html } = await page();
    const config = JSON.parse(/data-configuration='([^']*)'/.exec(html)?.[1] ?? "{}");
    expect(config).toMatchObject({
      url: "swagger/json",
      cdn: "swagger/scalar.js",
      withDefaultFonts: false,
      proxyUrl: "",
      telemetry: false,
      agent: { disabled: true },
    });
  });

  test("the page renders on every load, not only the first", async () => {
    const app = testApp(fakeDeps().deps);
    const loads = [];
    for (let i = 0; i < 3; i++) {
      const res = await app.handle(request("/swagger"));
      loads.push({ status: res.status, bytes: (await res.text()).length > 1000 });
    }
    expect(loads).toEqual(Array(3).fill({ status: 200, bytes: true }));
  });

  test("/swagger/scalar.js is the embedded standalone bundle, served as JavaScript", async () => {
    const res = await testApp(fakeDeps().deps).handle(request("/swagger/scalar.js"));
    const body = await res.text();
    expect({
      status: res.status,
      type: res.headers.get("content-type"),
      big: body.length > 1_000_000,
      // The UMD build has no chunks to fetch: nothing imports a path relative to the script.
      chunkImports: /import\(\s*["'`]\.\.?\//.test(body),
    }).toEqual({
      status: 200,
      type: expect.stringContaining("javascript"),
      big: true,
      chunkImports: false,
    });
  });
});
