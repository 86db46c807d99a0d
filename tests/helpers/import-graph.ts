/**
 * The import graph of a source tree, read with Bun's own parser
 * (`Bun.Transpiler#scanImports`), and a cycle finder over it. Used by the
 * architecture test to keep imports pointing one way.
 */
import { existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { Glob } from "bun";

/** File → the files it imports (repo-relative), or the package names it imports. */
export type ImportGraph = Map<string, string[]>;

export interface ReadOptions {
  /**
   * Also count type-only imports. scanImports drops them (they vanish from
   * the emitted JavaScript), so they are made value imports before the scan.
   * Runtime cycles need only value imports; layer rules count both, since a
   * type from another layer couples just as much.
   */
  withTypeImports: boolean;
}

const transpiler = new Bun.Transpiler({ loader: "ts" });

/** Reads every .ts file under `dir` (relative to `root`), keyed by its repo-relative path. */
export async function readImportGraph(
  root: string,
  dir: string,
  options: ReadOptions,
): Promise<ImportGraph> {
  const graph: ImportGraph = new Map();
  for (const file of new Glob(`${dir}/**/*.ts`).scanSync(root)) {
    if (file.endsWith(".d.ts")) continue;
    const text = await Bun.file(join(root, file)).text();
    graph.set(file, importsOf(root, file, text, options));
  }
  return graph;
}

function importsOf(root: string, file: string, text: string, options: ReadOptions): string[] {
  // A shebang line is not TypeScript to the transpiler.
  let source = text.replace(/^#!.*/, "");
  if (options.withTypeImports) source = typeImportsAsValues(source);
  const targets = transpiler.scanImports(source).map(({ path }) => {
    if (!path.startsWith(".")) return path;
    return resolveFile(root, relative(root, resolve(root, dirname(file), path)));
  });
  return [...new Set(targets)].sort();
}

/** `import type {A}` → `import {A}`, `{ type B }` → `{ B }`, `export type {C}` → `export {C}`. */
export function typeImportsAsValues(source: string): string {
  return source
    .replace(/\bimport\s+type\b/g, "import")
    .replace(/\bexport\s+type(\s*[{*])/g, "export$1")
    .replace(/([{,]\s*)type\s+(?=[A-Za-z_$][\w$]*\s*(?:[,}]|\bas\b))/g, "$1");
}

/** An import without an extension names `x.ts` or `x/index.ts`. */
function resolveFile(root: string, path: string): string {
  if (existsSync(join(root, path)) && !path.endsWith("/")) return path;
  for (const candidate of [`${path}.ts`, `${path}/index.ts`]) {
    if (existsSync(join(root, candidate))) return candidate;
  }
  return path;
}

/**
 * Every import cycle, one concrete path per strongly connected component
 * (Tarjan), each written `a → b → … → a`. Empty when the graph is a DAG.
 */
export function findCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = [];
  for (const component of stronglyConnected(graph)) {
    const first = component[0] as string;
    const selfLoop = graph.get(first)?.includes(first) ?? false;
    if (component.length === 1 && !selfLoop) continue;
    cycles.push(cycleThrough(graph, first, new Set(component)));
  }
  return cycles;
}

function stronglyConnected(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  // Recursive on purpose: import chains are a few dozen deep at most.
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node) as number);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) as number, index.get(next) as number));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop() as string;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    components.push(component.sort());
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return components;
}

/** The shortest path from `start` back to itself inside one component (breadth first). */
function cycleThrough(graph: ImportGraph, start: string, component: Set<string>): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i] as string;
    for (const next of graph.get(node) ?? []) {
      if (!component.has(next)) continue;
      if (next === start) {
        const path = [start];
        for (let at = node; at !== start; at = cameFrom.get(at) as string) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}
