/**
 * `bun run release [--targets linux-x64,linux-arm64] [--out DIR]`: compiles the
 * relay for each release target into dist/release/ (makima-relay-<target>) and
 * writes SHA256SUMS there in the format `sha256sum -c` reads. Bun fetches each
 * foreign target's runtime from the npm registry. Earlier release files in the
 * directory are removed first, so SHA256SUMS lists exactly what this run built.
 */
import { createReadStream } from "node:fs";
import { chmod, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { VERSION } from "../src/version.ts";
import { compileBinary, REPO_ROOT, sourceCommit } from "./build-binary.ts";

export const RELEASE_DIR = join(REPO_ROOT, "dist", "release");
export const SUMS_FILE = "SHA256SUMS";

/** Release name → bun's compile target. linux-x64 needs AVX2 (Bun's default x64 build). */
export const RELEASE_TARGETS = {
  "linux-x64": "bun-linux-x64",
  "linux-arm64": "bun-linux-arm64",
  "linux-x64-musl": "bun-linux-x64-musl",
  "darwin-x64": "bun-darwin-x64",
  "darwin-arm64": "bun-darwin-arm64",
} as const;

export type ReleaseTarget = keyof typeof RELEASE_TARGETS;

export const releaseFileName = (target: ReleaseTarget): string => `makima-relay-${target}`;

/** The release name of the machine this runs on (musl is never guessed). */
export function hostTarget(): ReleaseTarget {
  const os = process.platform === "darwin" ? "darwin" : "linux";
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  return `${os}-${arch}`;
}

export interface ReleaseResult {
  dir: string;
  commit: string;
  files: { target: ReleaseTarget; file: string; sha256: string }[];
}

export async function buildRelease(
  targets: readonly ReleaseTarget[] = Object.keys(RELEASE_TARGETS) as ReleaseTarget[],
  dir: string = RELEASE_DIR,
): Promise<ReleaseResult> {
  const commit = sourceCommit();
  await mkdir(dir, { recursive: true });
  // Only this script's own files: --out may name a directory that holds others.
  for (const name of await readdir(dir)) {
    if (name === SUMS_FILE || name.startsWith("makima-relay-")) await rm(join(dir, name));
  }
  const files: ReleaseResult["files"] = [];
  // One after another: each compile holds a whole runtime in memory and the cores are few.
  for (const target of targets) {
    const file = join(dir, releaseFileName(target));
    await compileBinary({ outfile: file, target: RELEASE_TARGETS[target], commit });
    // The source map is inside the binary too (stack traces name src/ lines); the copy beside it is spare.
    await rm(`${file}.map`, { force: true });
    await chmod(file, 0o755);
    files.push({ target, file, sha256: await sha256(file) });
  }
  await writeFile(join(dir, SUMS_FILE), sumsText(files));
  return { dir, commit, files };
}

/** `<hex>  <name>` per line: the two spaces mark text mode, which sha256sum and shasum accept. */
export function sumsText(files: readonly { file: string; sha256: string }[]): string {
  return files.map((f) => `${f.sha256}  ${basename(f.file)}\n`).join("");
}

export async function sha256(file: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of createReadStream(file)) hasher.update(chunk as Buffer);
  return hasher.digest("hex");
}

export function parseTargets(list: string | undefined): ReleaseTarget[] {
  if (list === undefined) return Object.keys(RELEASE_TARGETS) as ReleaseTarget[];
  const names = list.split(",").map((t) => t.trim());
  const unknown = names.filter((t) => !(t in RELEASE_TARGETS));
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(
      `unknown release target ${unknown.join(", ")} (known: ${Object.keys(RELEASE_TARGETS).join(", ")})`,
    );
  }
  return names as ReleaseTarget[];
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { targets: { type: "string" }, out: { type: "string" } },
  });
  const started = performance.now();
  const result = await buildRelease(
    parseTargets(values.targets),
    values.out ? resolve(values.out) : RELEASE_DIR,
  );
  for (const f of result.files) console.log(`${f.sha256}  ${f.file}`);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `makima-relay ${VERSION} (commit ${result.commit}): ${result.files.length} binaries and ${SUMS_FILE} in ${result.dir} in ${seconds} s`,
  );
}
