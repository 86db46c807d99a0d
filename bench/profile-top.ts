#!/usr/bin/env bun
/**
 * `bun run bench/profile-top.ts <file.cpuprofile> [rows]`: the functions
 * a `--cpu-prof` profile (e.g. from `bun run bench --cpu-prof DIR`) caught
 * most often, by sample count, self and inclusive. Counting samples instead
 * of summing their time deltas keeps one long gap (an idle relay, or a
 * sampler thread starved on a busy 2-core box) from being charged to
 * whatever function happened to be on top.
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const IDLE = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url
    ? `${url.replace(/^.*\/(src|node_modules)\//, "$1/")}:${lineNumber + 1}`
    : "native";
  return `${functionName || "(anonymous)"} ${where}`;
}

function main(argv: string[]): number {
  const [file, rowsArg] = argv;
  if (!file) {
    console.error("usage: bun run bench/profile-top.ts <file.cpuprofile> [rows]");
    return 2;
  }
  const rows = Number(rowsArg ?? 25);
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busy = 0;
  for (const id of profile.samples) {
    const node = byId.get(id);
    if (!node || IDLE.has(node.callFrame.functionName)) continue;
    busy++;
    const top = label(node);
    self.set(top, (self.get(top) ?? 0) + 1);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (!n || IDLE.has(n.callFrame.functionName)) continue;
      const name = label(n);
      if (seen.has(name)) continue;
      seen.add(name);
      total.set(name, (total.get(name) ?? 0) + 1);
    }
  }
  const table = (title: string, counts: Map<string, number>) => {
    console.log(
      `\n${title} (${busy} busy samples)\n\n| Samples | Share | Function |\n|--:|--:|---|`,
    );
    const sorted = [...counts].sort((a, b) => b[1] - a[1]).slice(0, rows);
    for (const [name, n] of sorted) {
      console.log(`| ${n} | ${((n * 100) / Math.max(1, busy)).toFixed(1)}% | \`${name}\` |`);
    }
  };
  table("Self", self);
  table("Inclusive", total);
  return 0;
}

process.exit(main(process.argv.slice(2)));
