/**
 * `bun run release` for this machine's target: the binary lands in the
 * release directory with a SHA256SUMS that `sha256sum -c` accepts, and its
 * `--version` names the version and the commit it was built from. The five
 * targets and the container recipe's file names are checked without building.
 * (.ci/run also builds linux-arm64 and runs it under qemu-user.)
 */
import { afterAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, sourceCommit } from "../../scripts/build-binary.ts";
import {
  hostTarget,
  parseTargets,
  RELEASE_TARGETS,
  releaseFileName,
  SUMS_FILE,
} from "../../scripts/release.ts";
import { VERSION, versionLine } from "../../src/version.ts";

const out = mkdtempSync(join(tmpdir(), "makima-relay-release-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const VERSION_LINE = /^\d+\.\d+\.\d+ \(commit ([0-9a-f]{40}(-dirty)?|unknown)\)$/;

test("the release binary for this machine, its SHA256SUMS and its --version", async () => {
  const target = hostTarget();
  const release = Bun.spawn(
    [process.execPath, "run", "scripts/release.ts", "--targets", target, "--out", out],
    { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" },
  );
  const [code, stderr] = await Promise.all([release.exited, new Response(release.stderr).text()]);
  expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });

  const name = releaseFileName(target);
  expect(readdirSync(out).sort()).toEqual([SUMS_FILE, name]);
  const digest = createHash("sha256")
    .update(readFileSync(join(out, name)))
    .digest("hex");
  expect(readFileSync(join(out, SUMS_FILE), "utf8")).toBe(`${digest}  ${name}\n`);
  const check = Bun.spawnSync(["sha256sum", "-c", SUMS_FILE], { cwd: out });
  expect(check.stdout.toString()).toBe(`${name}: OK\n`);
  expect(check.exitCode).toBe(0);

  const version = Bun.spawnSync([join(out, name), "--version"], { env: {} });
  const line = version.stdout.toString().trim();
  expect(line).toMatch(VERSION_LINE);
  expect(line).toBe(`${VERSION} (commit ${sourceCommit()})`);
  expect(version.exitCode).toBe(0);
}, 180_000);

test("from source, --version says dev instead of a commit", () => {
  expect(versionLine()).toBe(`${VERSION} (dev)`);
});

test("five targets, each with its own bun target; unknown names are refused", () => {
  expect(Object.keys(RELEASE_TARGETS)).toEqual([
    "linux-x64",
    "linux-arm64",
    "linux-x64-musl",
    "darwin-x64",
    "darwin-arm64",
  ]);
  expect(new Set(Object.values(RELEASE_TARGETS)).size).toBe(5);
  expect(parseTargets("linux-arm64,darwin-x64")).toEqual(["linux-arm64", "darwin-x64"]);
  expect(() => parseTargets("linux-riscv64")).toThrow("unknown release target linux-riscv64");
});

test("the container recipe takes release binaries and their SHA256SUMS by those names", () => {
  const recipe = readFileSync(join(REPO_ROOT, "deploy", "Containerfile"), "utf8");
  const copied = [...recipe.matchAll(/\bmakima-relay-[a-z0-9-]+/g)].map((m) => m[0]);
  const known = new Set(
    (Object.keys(RELEASE_TARGETS) as (keyof typeof RELEASE_TARGETS)[]).map(releaseFileName),
  );
  expect(copied.length).toBeGreaterThan(0);
  expect(copied.filter((n) => !known.has(n))).toEqual([]);
  expect(recipe).toMatch(/^COPY .*\bSHA256SUMS\b/m);
  expect(recipe).toContain("sha256sum -c");
});
