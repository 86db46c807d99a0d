/** DELETE /daemons/:machineId: a write route over HttpDeps.releaseBinding. */
import { expect, test } from "bun:test";
import { daemonView, fakeDeps, json, request, testApp } from "./fake-deps.ts";

const daemon = daemonView();

test("releases a binding: 200 with whether the daemon was disconnected, then 404", async () => {
  const { deps, state } = fakeDeps({ bindings: ["m-1"], daemons: [daemon] });
  const app = testApp(deps);
  const res = await app.handle(request("/daemons/m-1?disconnect=true", { method: "DELETE" }));
  expect([res.status, await json(res)]).toEqual([
    200,
    {
      machineId: "m-1",
      released: true,
      disconnected: true,
      message: "binding released; the connected daemon was disconnected (4401)",
    },
  ]);
  const again = await app.handle(request("/daemons/m-1", { method: "DELETE" }));
  expect([again.status, await json(again)]).toEqual([
    404,
    { error: "no binding for this machineId" },
  ]);
  expect(state.releases).toEqual([
    { machineId: "m-1", disconnect: true },
    { machineId: "m-1", disconnect: false },
  ]);
});

test("a machineId with URL-escaped characters reaches the relay decoded", async () => {
  const { deps, state } = fakeDeps({ bindings: ["rack 4/gpu"] });
  const res = await testApp(deps).handle(request("/daemons/rack%204%2Fgpu", { method: "DELETE" }));
  expect(res.status).toBe(200);
  expect(state.releases).toEqual([{ machineId: "rack 4/gpu", disconnect: false }]);
});

test("disconnect must be true or false: 400 naming it, nothing released", async () => {
  const { deps, state } = fakeDeps({ bindings: ["m-1"] });
  const res = await testApp(deps).handle(
    request("/daemons/m-1?disconnect=yes", { method: "DELETE" }),
  );
  expect([res.status, (await json(res)).error]).toEqual([
    400,
    "'disconnect' must be true or false, got 'yes'",
  ]);
  expect(state.releases).toEqual([]);
});

test("a write route: a remote peer without a token gets 403, a wrong token 401", async () => {
  const { deps, state } = fakeDeps({ bindings: ["m-1"] });
  const remote = testApp(deps, {}, "203.0.113.9");
  expect((await remote.handle(request("/daemons/m-1", { method: "DELETE" }))).status).toBe(403);
  const guarded = testApp(deps, { adminToken: "admin-token-1" }, "203.0.113.9");
  const wrong = request("/daemons/m-1", {
    method: "DELETE",
    headers: { authorization: "Bearer nope" },
  });
  expect((await guarded.handle(wrong)).status).toBe(401);
  expect(state.releases).toEqual([]);
  const right = request("/daemons/m-1", {
    method: "DELETE",
    headers: { authorization: "Bearer admin-token-1" },
  });
  expect((await guarded.handle(right)).status).toBe(200);
});
