/** The README stays true: every option and every documented route is in it. */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { flagName, OPTIONS } from "../../src/config/options.ts";
import { fakeDeps, json, request, testApp } from "../http/fake-deps.ts";

const root = join(import.meta.dir, "../..");
const readme = readFileSync(join(root, "README.md"), "utf8");

test.each(OPTIONS.map((o) => [o.env, flagName(o.env)]))("README documents %s (%s)", (env, flag) => {
  expect(readme).toContain(`\`${env}\``);
  expect(readme).toContain(`\`${flag}\``);
});

test("README lists every route of the OpenAPI document", async () => {
  const spec = await json(await testApp(fakeDeps().deps).handle(request("/swagger/json")));
  const paths = Object.keys(spec.paths as Record<string, unknown>).map((p) =>
    p.replace(/\{(\w+)\}/g, ":$1"),
  );
  expect(paths.length).toBeGreaterThan(8);
  for (const path of paths) expect(readme).toContain(`${path}`);
});

test("the README's two set-up commands are the package scripts that exist", () => {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };
  for (const script of ["demo", "test", "build", "start", "bench"]) {
    expect(readme).toContain(`bun run ${script}`);
    expect(pkg.scripts[script]).toBeString();
  }
});
