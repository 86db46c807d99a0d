/**
 * What the kernel says about a process: CPU time from /proc/<pid>/stat
 * (utime + stime, in clock ticks) and memory from /proc/<pid>/status. Linux
 * only, like the relay's deployment target; elsewhere the figures read 0.
 */
import { readFileSync } from "node:fs";

let ticksPerSecond: number | undefined;

/** USER_HZ; 100 on every mainstream Linux, asked of getconf once. */
export function clockTicks(): number {
  if (ticksPerSecond !== undefined) return ticksPerSecond;
  const out = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
  const n = Number(out.stdout.toString().trim());
  ticksPerSecond = Number.isInteger(n) && n > 0 ? n : 100;
  return ticksPerSecond;
}

/** User plus system CPU time of `pid`, in milliseconds (resolution 1000/CLK_TCK ms). */
export function cpuTimeMs(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0;
  }
  // comm (field 2) may hold spaces and parentheses: split after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Field 3 (state) is index 0 here, so utime (14) is 11 and stime (15) is 12.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / clockTicks();
}

export interface MachineCpu {
  /** user + nice + system: time spent running processes, ms since boot. */
  process: number;
  /** irq + softirq + steal: interrupts (loopback networking among them) and the hypervisor. */
  kernel: number;
}

/** CPU time of the whole machine since boot, from /proc/stat's `cpu` line. */
export function machineCpuMs(): MachineCpu {
  let stat: string;
  try {
    stat = readFileSync("/proc/stat", "utf8");
  } catch {
    return { process: 0, kernel: 0 };
  }
  // cpu user nice system idle iowait irq softirq steal (guest time is already in user).
  const n = (stat.split("\n")[0] ?? "").trim().split(/\s+/).slice(1, 9).map(Number);
  const at = (i: number) => (Number.isFinite(n[i]) ? (n[i] as number) : 0);
  const toMs = 1000 / clockTicks();
  return {
    process: (at(0) + at(1) + at(2)) * toMs,
    kernel: (at(5) + at(6) + at(7)) * toMs,
  };
}

/** Cores busy on the whole machine over `ms` (a look before the run starts). */
export async function machineBusyCores(ms: number): Promise<number> {
  const a = machineCpuMs();
  await Bun.sleep(ms);
  const b = machineCpuMs();
  return (b.process - a.process + b.kernel - a.kernel) / ms;
}

export interface Memory {
  /** Resident set now, bytes. */
  rss: number;
  /** Peak resident set over the process's life (VmHWM), bytes. */
  peak: number;
}

export function memoryOf(pid: number): Memory {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return { rss: 0, peak: 0 };
  }
  const kb = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") * 1024, peak: kb("VmHWM") * 1024 };
}

/** CPU time consumed between two reads, with the wall time, for a utilisation figure. */
export class CpuMeter {
  readonly #pid: number;
  readonly #cpu0: number;
  readonly #wall0: number;

  constructor(pid: number) {
    this.#pid = pid;
    this.#cpu0 = cpuTimeMs(pid);
    this.#wall0 = performance.now();
  }

  read(): { cpuMs: number; wallMs: number; utilisation: number } {
    const cpuMs = cpuTimeMs(this.#pid) - this.#cpu0;
    const wallMs = performance.now() - this.#wall0;
    return { cpuMs, wallMs, utilisation: wallMs > 0 ? cpuMs / wallMs : 0 };
  }
}

const children = new Set<Bun.Subprocess>();

/** Remembers a child process so that `killChildren` can end it if the bench dies first. */
export function trackChild(proc: Bun.Subprocess): void {
  children.add(proc);
  proc.exited.then(() => children.delete(proc));
}

/** SIGKILLs every tracked child still running (the bench is exiting abnormally). */
export function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}
