/**
 * The layering in README "Layout" and /work style, checked on the import graph
 * of src/: no import cycle; protocol/ imports nothing of ours; core/ imports
 * only core/ and protocol/; no product code imports the benchmark or the
 * build scripts. A failure names the offending imports or prints the cycle.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  findCycles,
  type ImportGraph,
  readImportGraph,
  typeImportsAsValues,
} from "../helpers/import-graph.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** Packages each inner layer may use: protocol/ stays pure, core/ does no I/O. */
const PROTOCOL_PACKAGES = [/^@sinclair\/typebox(\/|$)/];
const CORE_PACKAGES = [...PROTOCOL_PACKAGES, /^node:crypto$/];

const runtime = await readImportGraph(ROOT, "src", { withTypeImports: false });
const withTypes = await readImportGraph(ROOT, "src", { withTypeImports: true });

/** `file → import` for every import of a file under `from` that `allowed` refuses. */
function violations(
  graph: ImportGraph,
  from: string,
  allowed: (target: string) => boolean,
): string[] {
  const found: string[] = [];
  for (const [file, targets] of graph) {
    if (!file.startsWith(from)) continue;
    for (const target of targets) if (!allowed(target)) found.push(`${file} → ${target}`);
  }
  return found;
}

/** A relative import resolves to a repo path; anything else is a package name. */
const isOurs = (target: string) => existsSync(join(ROOT, target)) || target.startsWith("../");
const under = (target: string, ...dirs: string[]) => dirs.some((d) => target.startsWith(d));
const packageAllowed = (target: string, packages: RegExp[]) => packages.some((p) => p.test(target));

describe("architecture of src/", () => {
  test("the graph was read (a broken reader would pass every rule)", () => {
    expect(runtime.size).toBeGreaterThan(50);
    expect(runtime.get("src/main.ts")).toContain("src/relay-server.ts");
    expect(withTypes.get("src/http/app.ts")).toContain("src/http/deps.ts");
  });

  test("no import cycle", () => {
    const cycles = findCycles(runtime).map((cycle) => cycle.join(" → "));
    expect(cycles).toEqual([]);
  });

  test("protocol/ imports only itself and TypeBox", () => {
    const bad = violations(withTypes, "src/protocol/", (target) =>
      isOurs(target) ? under(target, "src/protocol/") : packageAllowed(target, PROTOCOL_PACKAGES),
    );
    expect(bad).toEqual([]);
  });

  test("core/ imports only core/ and protocol/ (and no I/O package)", () => {
    const bad = violations(withTypes, "src/core/", (target) =>
      isOurs(target)
        ? under(target, "src/core/", "src/protocol/")
        : packageAllowed(target, CORE_PACKAGES),
    );
    expect(bad).toEqual([]);
  });

  test("nothing in src/ imports bench/ or scripts/", () => {
    const bad = violations(withTypes, "src/", (target) => !under(target, "bench/", "scripts/"));
    expect(bad).toEqual([]);
  });
});

describe("the import graph reader", () => {
  test("findCycles prints each cycle and passes a graph without one", () => {
    const graph: ImportGraph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts", "d.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["d.ts"]],
      ["e.ts", ["a.ts", "lib"]],
    ]);
    expect(findCycles(graph)).toEqual([
      ["d.ts", "d.ts"],
      ["a.ts", "b.ts", "c.ts", "a.ts"],
    ]);
    graph.set("c.ts", []);
    graph.set("d.ts", []);
    expect(findCycles(graph)).toEqual([]);
  });

  test("type-only imports count for the layer rules, not for cycles", () => {
    const source = [
      'import type { A } from "./a.ts";',
      'import { type B, type C as D } from "./b.ts";',
      'export type { E } from "./e.ts";',
      'const x = { type: "kept" };',
    ].join("\n");
    const scan = (text: string) => new Bun.Transpiler({ loader: "ts" }).scanImports(text);
    expect(scan(source)).toEqual([]);
    expect(scan(typeImportsAsValues(source)).map((i) => i.path)).toEqual([
      "./a.ts",
      "./b.ts",
      "./e.ts",
    ]);
    expect(typeImportsAsValues(source)).toContain('{ type: "kept" }');
  });
});
