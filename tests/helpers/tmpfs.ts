/**
 * A real small filesystem for storage-failure tests: a tmpfs of a given size
 * (needs root, as the CI container runs), optionally pre-filled so that a
 * database on it runs out of space after a known amount of writing. Failing
 * to mount is a test failure with a readable cause, never a skip: a test that
 * cannot inject its fault proves nothing.
 */
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Tmpfs extends AsyncDisposable {
  readonly dir: string;
  /** Bytes still free on the filesystem. */
  free(): number;
  /** Writes a file of zeros of `bytes` bytes and returns its path (delete it to free the space). */
  fill(name: string, bytes: number): string;
}

function run(cmd: string[]): { ok: boolean; out: string } {
  const proc = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { ok: proc.exitCode === 0, out: `${proc.stdout}${proc.stderr}`.trim() };
}

export function mountTmpfs(sizeBytes: number, prefix = "makima-relay-tmpfs-"): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const mounted = run(["mount", "-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", dir]);
  if (!mounted.ok) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `cannot mount a ${sizeBytes}-byte tmpfs on ${dir} (this test injects a full disk and must run as root with mount(8) allowed): ${mounted.out}`,
    );
  }
  return {
    dir,
    free() {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    fill(name, bytes) {
      const path = join(dir, name);
      writeFileSync(path, Buffer.alloc(bytes));
      return path;
    },
    async [Symbol.asyncDispose]() {
      // A lazy unmount still detaches it if a file on it is somehow still open.
      if (!run(["umount", dir]).ok) run(["umount", "-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A directory inside `fs` (so a test can bind-mount or chmod it on its own). */
export function subdir(fs: Tmpfs, name: string): string {
  const path = join(fs.dir, name);
  mkdirSync(path, { recursive: true });
  return path;
}
