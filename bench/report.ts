/** The run's results as JSON (everything) and as a Markdown table (the figures). */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { MachineInfo } from "./machine.ts";
import { nonDefaults } from "./relay-env.ts";
import { round } from "./stats.ts";
import type { BenchOptions, Figure, RelayRecord, ScenarioReport } from "./types.ts";

export interface BenchResults {
  date: string;
  machine: MachineInfo;
  /** Cores busy on the machine just before the first scenario (other workloads). */
  busyBeforeRun: number;
  relayBinary: string;
  options: Omit<BenchOptions, "only"> & { only: string[] };
  totalSeconds: number;
  scenarios: ScenarioReport[];
}

export function writeResults(results: BenchResults, markdown: string, out: string): void {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.json`, `${JSON.stringify(results, roundNumbers, 2)}\n`);
  writeFileSync(`${out}.md`, markdown);
}

function roundNumbers(_key: string, value: unknown): unknown {
  if (typeof value !== "number" || Number.isInteger(value)) return value;
  return round(value, 4);
}

export function renderMarkdown(results: BenchResults): string {
  const m = results.machine;
  const lines = [
    `## Run of ${results.date}`,
    "",
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}, Linux ${m.kernel}; Bun ${m.bun}; commit ${m.gitCommit}${m.gitDirty ? " (with uncommitted changes)" : ""}.`,
    `Mode: ${results.options.quick ? "--quick (a smoke check: counts too small for the figures to mean much; targets printed, never enforced)" : "full"}; total ${round(results.totalSeconds, 1)} s; relay binary ${results.relayBinary}.`,
    `Machine load: ${results.busyBeforeRun.toFixed(2)} cores busy just before the run${
      results.busyBeforeRun > 0.25 ? " (**shared machine: figures are noisy**)" : ""
    }.`,
    settingsLine(results.options.relayEnv),
    "",
    "| Scenario | Figure | Direct | Relay | Relay ÷ direct | Target | Met |",
    "|---|---|--:|--:|--:|---|:-:|",
  ];
  for (const s of results.scenarios) {
    if (s.error) {
      lines.push(`| ${s.name} | **failed**: ${oneLine(s.error)} | | | | | ✗ |`);
      continue;
    }
    for (const f of s.figures) lines.push(row(s.name, f));
  }
  lines.push("");
  for (const s of results.scenarios) {
    const others =
      s.otherCoresMax === undefined
        ? ""
        : `; other processes kept up to ${s.otherCoresMax.toFixed(2)} cores busy`;
    lines.push(`- **${s.name}**: ${s.title} (${round(s.seconds, 1)} s${others})`);
    lines.push(`  - ${relaySettings(s.relays ?? [])}`);
    for (const note of s.notes ?? []) lines.push(`  - ${note}`);
  }
  lines.push("", ...targetLines(results.scenarios), "", ...envLines(results.scenarios), "");
  return lines.join("\n");
}

function settingsLine(extra: Record<string, string>): string {
  const set = Object.entries(extra);
  if (set.length === 0) {
    return "Relay settings: **defaults**, except where a scenario below names a setting its point needs.";
  }
  return `Relay settings: **non-default run**, every relay with ${set
    .map(([k, v]) => `\`${k}=${v}\``)
    .join(", ")} (\`--relay-env\`), plus what a scenario below names.`;
}

/** "defaults" or the non-default settings its relays ran with, and why. */
export function relaySettings(relays: readonly RelayRecord[]): string {
  if (relays.length === 0) return "no relay started";
  const tuned = new Map<string, Set<string>>();
  const reasons = new Set<string>();
  for (const r of relays) {
    for (const [k, v] of Object.entries(nonDefaults(r.env))) {
      tuned.set(k, (tuned.get(k) ?? new Set()).add(v));
    }
    for (const why of r.reasons) reasons.add(why);
  }
  if (tuned.size === 0) return "relay settings: defaults";
  const list = [...tuned].map(([k, vs]) => `\`${k}=${[...vs].join("|")}\``).join(", ");
  return `relay settings: **non-default** ${list}: ${[...reasons].join("; ")}`;
}

/** Every target of the run with its verdict, in one list. */
function targetLines(scenarios: readonly ScenarioReport[]): string[] {
  const rows: string[] = [];
  let met = 0;
  for (const s of scenarios) {
    if (s.error) rows.push(`- **not measured** — ${s.name}: the scenario failed`);
    for (const f of s.figures) {
      if (!f.target) continue;
      if (f.target.met) met++;
      const value =
        f.ratio !== null && f.target.text.includes("×")
          ? `${f.ratio.toFixed(2)}×`
          : num(f.relay, f.unit);
      rows.push(
        `- ${f.target.met ? "**met**" : "**missed**"} — ${s.name}: ${f.figure} ${value} (target ${f.target.text})`,
      );
    }
  }
  const total = rows.filter((r) => !r.includes("not measured")).length;
  return [`### Targets: ${met} of ${total} met`, "", ...rows];
}

/** Each scenario's relay environment (the first relay's; the JSON file has every relay's). */
function envLines(scenarios: readonly ScenarioReport[]): string[] {
  const lines = ["### Relay environment (MAKIMA_*, secrets masked)", ""];
  for (const s of scenarios) {
    const first = s.relays?.[0];
    if (!first) continue;
    const env = Object.entries(first.env)
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(" ");
    lines.push(`- **${s.name}** (${s.relays?.length} relays; first shown): ${env}`);
  }
  return lines;
}

function row(scenario: string, f: Figure): string {
  const met = f.target === null ? "" : f.target.met ? "✓" : "✗";
  return `| ${scenario} | ${f.figure} | ${num(f.direct, f.unit)} | ${num(f.relay, f.unit)} | ${
    f.ratio === null ? "" : `${f.ratio.toFixed(2)}×`
  } | ${f.target?.text ?? ""} | ${met} |`;
}

/** Units decide the precision: rates as integers, ms and µs with a few decimals. */
export function num(value: number | null, unit: string): string {
  if (value === null) return "—";
  if (!Number.isFinite(value)) return "n/a";
  const digits =
    unit === "ms" || unit === "µs"
      ? Math.abs(value) < 10
        ? 3
        : 1
      : unit === "MB" || unit === "MB/s"
        ? 1
        : Number.isInteger(value) || Math.abs(value) >= 100
          ? 0
          : 2;
  const text = value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  return `${text} ${unit}`;
}

function oneLine(text: string): string {
  return text.split("\n")[0]?.replaceAll("|", "\\|").slice(0, 200) ?? "";
}
