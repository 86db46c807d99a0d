/**
 * Finds the Chromium the browser tests drive, with no manual step and no
 * download: Debian's /usr/bin/chromium when installed, else the headless
 * Chromium that the @sparticuz/chromium dev dependency ships inside its npm
 * package (x64 Linux only: brotli-compressed, with the few libraries it links
 * beyond glibc — NSS, NSPR, expat — and a font). That one is unpacked once
 * into node_modules/.cache and runs on a bare Debian with no apt package.
 * MAKIMA_RELAY_TEST_CHROMIUM names another binary (e.g. Chrome on macOS).
 */
import { spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, existsSync, readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createBrotliDecompress } from "node:zlib";
import { REPO_ROOT } from "../helpers/binary.ts";

export const DEBIAN_CHROMIUM = "/usr/bin/chromium";
const PACKAGE = "@sparticuz/chromium";
const CACHE_ROOT = join(REPO_ROOT, "node_modules", ".cache", "makima-relay-chromium");

export interface ChromiumExecutable {
  path: string;
  /** Variables the browser process needs on top of ours (library and font paths). */
  env: Record<string, string>;
  source: "env" | "debian" | "package";
}

export async function findChromium(
  env: Record<string, string | undefined> = process.env,
): Promise<ChromiumExecutable> {
  const override = env.MAKIMA_RELAY_TEST_CHROMIUM;
  if (override) {
    if (!existsSync(override)) throw new Error(`MAKIMA_RELAY_TEST_CHROMIUM=${override} is missing`);
    return { path: override, env: {}, source: "env" };
  }
  if (existsSync(DEBIAN_CHROMIUM)) return { path: DEBIAN_CHROMIUM, env: {}, source: "debian" };
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(
      `No browser for the browser tests: ${DEBIAN_CHROMIUM} is missing and ${PACKAGE} ships only a Linux x64 build (this is ${process.platform}-${process.arch}). Install Chromium (Debian: apt-get install -y chromium) or set MAKIMA_RELAY_TEST_CHROMIUM. The browser tests do not skip.`,
    );
  }
  const dir = await unpackPackagedChromium();
  return {
    path: join(dir, "chromium"),
    env: { LD_LIBRARY_PATH: join(dir, "lib"), FONTCONFIG_PATH: dir },
    source: "package",
  };
}

/**
 * Unpacks the package's archives into a directory named after its version.
 * The work happens in a private directory renamed into place at the end, so a
 * concurrent test process (or one killed halfway) never sees a partial copy.
 */
async function unpackPackagedChromium(): Promise<string> {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve(`${PACKAGE}/package.json`);
  const version = JSON.parse(readFileSync(manifest, "utf8")).version as string;
  const bin = join(dirname(manifest), "bin");
  const dir = join(CACHE_ROOT, version);
  if (existsSync(join(dir, "chromium"))) return dir;

  const partial = `${dir}.partial-${process.pid}-${Date.now()}`;
  await mkdir(partial, { recursive: true });
  try {
    await inflate(join(bin, "chromium.br"), join(partial, "chromium"), 0o755);
    for (const archive of ["al2023.tar.br", "swiftshader.tar.br", "fonts.tar.br"]) {
      const tar = join(partial, archive.replace(/\.br$/, ""));
      await inflate(join(bin, archive), tar, 0o644);
      untar(tar, partial);
      await rm(tar);
    }
    // The package's fonts.conf names Lambda's directories; this one names ours.
    await writeFile(
      join(partial, "fonts.conf"),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <dir>${join(dir, "fonts")}</dir>\n  <cachedir>${join(dir, "fonts-cache")}</cachedir>\n</fontconfig>\n`,
    );
    await rename(partial, dir).catch((error: NodeJS.ErrnoException) => {
      // Another process finished first: its copy is as good as ours.
      if (!existsSync(join(dir, "chromium"))) throw error;
    });
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  return dir;
}

async function inflate(from: string, to: string, mode: number): Promise<void> {
  await pipeline(createReadStream(from), createBrotliDecompress(), createWriteStream(to, { mode }));
}

/** tar is in every Debian (Essential: yes); the archives hold only plain files. */
function untar(tar: string, into: string): void {
  const run = spawnSync("tar", ["-xf", tar, "-C", into, "--no-same-owner"], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`tar -xf ${tar} failed: ${run.stderr || run.error}`);
}
