/**
 * Compiles the relay into one executable: `bun run build` (dist/makima-relay),
 * each target of `bun run release` (scripts/release.ts), and dist/makima-relay
 * when it is missing or older than its sources, for the benchmark and the tests
 * that run the compiled binary. Only src/ and drizzle/ go into the binary, so
 * changing bench/ or tests/ rebuilds nothing.
 */
import { mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dir, "..");
export const BINARY_PATH = join(REPO_ROOT, "dist", "makima-relay");
/** A binary older than any file under these directories is rebuilt. */
const SOURCE_DIRS = ["src", "drizzle"] as const;
const LOCK_DIR = join(REPO_ROOT, "dist", ".build.lock");
const LOCK_TIMEOUT_MS = 180_000;

/**
 * The one list of build flags; the commit is baked in as MAKIMA_RELAY_COMMIT (src/version.ts).
 * `--bytecode` stores the bundle as JavaScriptCore bytecode beside its source, so a start
 * skips parsing the ~1 MB bundle: about 70 ms less from spawn to the first /health 200.
 */
const BUILD_FLAGS = [
  "--compile",
  "--bytecode",
  "--minify-whitespace",
  "--minify-syntax",
  "--define",
  'process.env.NODE_ENV="production"',
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "--sourcemap",
] as const;

export interface CompileOptions {
  outfile: string;
  /** A `bun build --target`, e.g. "bun-linux-arm64"; the host's when absent. */
  target?: string;
  /** Defaults to sourceCommit(). */
  commit?: string;
}

/** Compiles src/main.ts to `outfile`. A cross target's runtime comes from the npm registry. */
export async function compileBinary(options: CompileOptions): Promise<void> {
  const commit = options.commit ?? sourceCommit();
  const args = [
    process.execPath,
    "build",
    ...BUILD_FLAGS,
    "--define",
    `MAKIMA_RELAY_COMMIT=${JSON.stringify(commit)}`,
    ...(options.target ? [`--target=${options.target}`] : []),
    join(REPO_ROOT, "src", "main.ts"),
    "--outfile",
    options.outfile,
  ];
  const proc = Bun.spawn(args, { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  if (code !== 0) throw new Error(`bun build failed with exit code ${code}\n${out}${err}`);
}

/**
 * The commit HEAD names, with "-dirty" when tracked files differ from it, or
 * "unknown" without git or outside a checkout. GIT_OPTIONAL_LOCKS=0 keeps
 * `git status` from taking the index lock that a concurrent `git add` needs.
 */
export function sourceCommit(root: string = REPO_ROOT): string {
  const git = (...args: string[]): string | undefined => {
    try {
      const run = Bun.spawnSync(["git", "-C", root, ...args], {
        env: { ...process.env, GIT_OPTIONAL_LOCKS: "0" },
        stdout: "pipe",
        stderr: "ignore",
      });
      return run.exitCode === 0 ? run.stdout.toString().trim() : undefined;
    } catch {
      return undefined; // no git on this machine
    }
  };
  const head = git("rev-parse", "HEAD");
  if (!head || !/^[0-9a-f]{40}$/.test(head)) return "unknown";
  const changes = git("status", "--porcelain", "--untracked-files=no");
  return changes ? `${head}-dirty` : head;
}

let building: Promise<string> | undefined;

/**
 * Builds dist/makima-relay if it is missing or older than any file in src/ or drizzle/,
 * at most once per process; a lock directory serialises builds across processes
 * (`bun test --parallel`). Returns the binary's absolute path.
 */
export function ensureBinary(): Promise<string> {
  building ??= buildIfStale().catch((error: unknown) => {
    building = undefined;
    throw error;
  });
  return building;
}

async function buildIfStale(): Promise<string> {
  if (!(await isStale())) return BINARY_PATH;
  await withBuildLock(async () => {
    // Another process may have built it while we waited for the lock.
    if (!(await isStale())) return;
    await compileBinary({ outfile: BINARY_PATH });
  });
  return BINARY_PATH;
}

async function isStale(): Promise<boolean> {
  const built = await stat(BINARY_PATH).catch(() => undefined);
  if (!built) return true;
  for (const dir of SOURCE_DIRS) {
    if ((await newestMtimeMs(join(REPO_ROOT, dir))) > built.mtimeMs) return true;
  }
  return false;
}

async function newestMtimeMs(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  let newest = 0;
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const { mtimeMs } = await stat(join(entry.parentPath, entry.name));
    newest = Math.max(newest, mtimeMs);
  }
  return newest;
}

/** `mkdir` is atomic, so the directory is the lock; a lock whose owner died is taken over. */
async function withBuildLock(fn: () => Promise<void>): Promise<void> {
  await mkdir(join(REPO_ROOT, "dist"), { recursive: true });
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let delay = 25;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (await lockOwnerIsGone()) {
      await rm(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for build lock ${LOCK_DIR}`);
    await Bun.sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
  try {
    await writeFile(join(LOCK_DIR, "pid"), String(process.pid));
    await fn();
  } finally {
    await rm(LOCK_DIR, { recursive: true, force: true });
  }
}

async function lockOwnerIsGone(): Promise<boolean> {
  const pid = Number(
    await Bun.file(join(LOCK_DIR, "pid"))
      .text()
      .catch(() => ""),
  );
  // No pid yet: the owner is between mkdir and writeFile, so treat it as alive.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

// `bun run build` (package.json) runs this file: a fresh dist/makima-relay for this machine.
if (import.meta.main) {
  const commit = sourceCommit();
  await compileBinary({ outfile: BINARY_PATH, commit });
  console.log(`${BINARY_PATH} (commit ${commit})`);
}
