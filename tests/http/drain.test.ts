/** POST/DELETE /daemons/:machineId/drain and /drain: write routes over HttpDeps' drain calls. */
import { describe, expect, test } from "bun:test";
import { buildSnapshot } from "../../src/http/dashboard/snapshot.ts";
import { daemonView, fakeDeps, json, request, testApp } from "./fake-deps.ts";

const daemon = daemonView();

async function call(app: ReturnType<typeof testApp>, path: string, method: string) {
  const res = await app.handle(request(path, { method }));
  return [res.status, await json(res)];
}

describe("a machine's drain", () => {
  test("drain, again (changed false), listed in GET /daemons, then undrained", async () => {
    const { deps, state } = fakeDeps({ daemons: [daemon] });
    const app = testApp(deps);
    expect(await call(app, "/daemons/m-1/drain", "POST")).toEqual([
      200,
      {
        machineId: "m-1",
        draining: true,
        connected: true,
        changed: true,
        message: "drained: no new task goes to it",
      },
    ]);
    expect((await call(app, "/daemons/m-1/drain", "POST"))[1]).toMatchObject({
      draining: true,
      changed: false,
      message: "already drained: no new task goes to it",
    });
    const listed = await json(await app.handle(request("/daemons")));
    expect({ flag: listed.daemons[0].draining, all: listed.drainingMachines }).toEqual({
      flag: true,
      all: ["m-1"],
    });
    expect(await call(app, "/daemons/m-1/drain", "DELETE")).toEqual([
      200,
      {
        machineId: "m-1",
        draining: false,
        connected: true,
        changed: true,
        message: "returned to rotation; queued tasks may go to it now",
      },
    ]);
    expect((await call(app, "/daemons/m-1/drain", "DELETE"))[1]).toMatchObject({
      changed: false,
      message: "not drained",
    });
    expect(state.drained).toEqual([]);
  });

  test("a machine not connected may be drained: it applies when it connects", async () => {
    const { deps, state } = fakeDeps();
    const [status, body] = await call(testApp(deps), "/daemons/rack%204%2Fgpu/drain", "POST");
    expect([status, body]).toEqual([
      200,
      {
        machineId: "rack 4/gpu",
        draining: true,
        connected: false,
        changed: true,
        message: "drained: no new task goes to it (not connected: it applies when it connects)",
      },
    ]);
    expect(state.drained).toEqual(["rack 4/gpu"]);
    const listed = await json(await testApp(deps).handle(request("/daemons")));
    expect(listed).toEqual({ daemons: [], drainingMachines: ["rack 4/gpu"] });
  });
});

describe("the relay's drain", () => {
  test("POST /drain shows in /status; DELETE /drain ends it; both idempotent", async () => {
    const { deps } = fakeDeps();
    const app = testApp(deps);
    const draining = async () => (await json(await app.handle(request("/status")))).draining;
    expect(await draining()).toBe(false);
    expect(await call(app, "/drain", "POST")).toEqual([
      200,
      {
        draining: true,
        changed: true,
        message: "draining: not ready; queued and running tasks carry on",
      },
    ]);
    expect(await draining()).toBe(true);
    expect((await call(app, "/drain", "POST"))[1]).toMatchObject({ changed: false });
    expect(await call(app, "/drain", "DELETE")).toEqual([
      200,
      { draining: false, changed: true, message: "drain ended" },
    ]);
    expect((await call(app, "/drain", "DELETE"))[1]).toEqual({
      draining: false,
      changed: false,
      message: "not draining",
    });
    expect(await draining()).toBe(false);
  });
});

test.each([
  ["/drain", "POST"],
  ["/drain", "DELETE"],
  ["/daemons/m-1/drain", "POST"],
  ["/daemons/m-1/drain", "DELETE"],
])(
  "%s %s is a write route: 403 remote without a token, 401 with a wrong one",
  async (path, method) => {
    const { deps, state } = fakeDeps({ drained: ["m-1"], relayDraining: true });
    const remote = testApp(deps, {}, "203.0.113.9");
    expect((await remote.handle(request(path, { method }))).status).toBe(403);
    const guarded = testApp(deps, { adminToken: "admin-token-1" }, "203.0.113.9");
    const wrong = request(path, { method, headers: { authorization: "Bearer nope" } });
    expect((await guarded.handle(wrong)).status).toBe(401);
    expect({ drained: state.drained, relay: state.relayDraining }).toEqual({
      drained: ["m-1"],
      relay: true,
    });
    const right = request(path, { method, headers: { authorization: "Bearer admin-token-1" } });
    expect((await guarded.handle(right)).status).toBe(200);
  },
);

test("the drain routes are documented with their answers and the admin token", async () => {
  const spec = await json(await testApp(fakeDeps().deps).handle(request("/swagger/json")));
  const ops = [
    spec.paths["/drain"].post,
    spec.paths["/drain"].delete,
    spec.paths["/daemons/{machineId}/drain"].post,
    spec.paths["/daemons/{machineId}/drain"].delete,
  ];
  expect(
    ops.map((op) => ({
      security: op.security,
      ok: op.responses["200"].content["application/json"].schema.required.includes("changed"),
    })),
  ).toEqual(Array(4).fill({ security: [{ adminToken: [] }], ok: true }));
});

test("the dashboard snapshot marks drained daemons and a draining relay", () => {
  const { deps } = fakeDeps({
    daemons: [daemon, { ...daemon, daemonId: "d-2", machineId: "m-2" }],
    drained: ["m-2", "m-away"],
    relayDraining: true,
  });
  const snap = buildSnapshot(deps);
  expect({
    relay: snap.draining,
    daemons: snap.daemons.map((d) => [d.machineId, d.draining]),
  }).toEqual({
    relay: true,
    daemons: [
      ["m-1", false],
      ["m-2", true],
    ],
  });
});
