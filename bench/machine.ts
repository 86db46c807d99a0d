/** Where and on what the run happened, for the report header. */
import { readFileSync } from "node:fs";
import { cpus, hostname, release, totalmem } from "node:os";

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  bun: string;
  hostname: string;
  gitCommit: string;
  gitDirty: boolean;
}

export function machineInfo(repoRoot: string): MachineInfo {
  const git = (args: string[]) =>
    Bun.spawnSync(["git", ...args], { cwd: repoRoot, stdout: "pipe", stderr: "ignore" })
      .stdout.toString()
      .trim();
  return {
    cpuModel: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    os: osName(),
    bun: Bun.version,
    hostname: hostname(),
    gitCommit: git(["rev-parse", "--short", "HEAD"]) || "unknown",
    gitDirty: git(["status", "--porcelain"]).length > 0,
  };
}

function osName(): string {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? process.platform;
  } catch {
    return process.platform;
  }
}
