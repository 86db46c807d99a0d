/**
 * docs/architecture.md stays true: every source file it names exists, and
 * every module of src/core is in its table of owners (a new core module
 * must say what it owns).
 */
import { expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/binary.ts";

const doc = readFileSync(join(REPO_ROOT, "docs", "architecture.md"), "utf8");
const named = [...doc.matchAll(/`((?:[a-z-]+\/)+[a-z-]+\.ts)`/g)].map((m) => m[1] as string);

test("every file docs/architecture.md names exists", () => {
  const missing = named.filter(
    (path) => !existsSync(join(REPO_ROOT, "src", path)) && !existsSync(join(REPO_ROOT, path)),
  );
  expect({ named: named.length > 20, missing }).toEqual({ named: true, missing: [] });
});

test("every core module that owns state is in its table of owners", () => {
  // Small helpers that own no state of the relay.
  const stateless = new Set([
    "address-key.ts",
    "backoff.ts",
    "clock.ts",
    "daemon.ts",
    "dispatch-heap.ts",
    "history-pruner.ts",
    "key-check.ts",
    "listeners.ts",
    "manual-clock.ts",
    "rate-limit.ts",
    "repeated-events.ts",
    "server-frames.ts",
    "upstream-socket.ts",
    "text-bound.ts",
  ]);
  const core = readdirSync(join(REPO_ROOT, "src", "core")).filter((f) => f.endsWith(".ts"));
  const unlisted = core.filter((f) => !stateless.has(f) && !named.includes(`core/${f}`));
  expect(unlisted).toEqual([]);
});
