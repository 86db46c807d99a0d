import { describe, expect, test } from "bun:test";
import { DEMO_USAGE, parseDemoArgs } from "../../src/cli/demo-args.ts";

describe("parseDemoArgs", () => {
  test.each([
    [[], {}],
    [["--rate", "2.5"], { ratePerSec: 2.5 }],
    [["--rate=0"], { ratePerSec: 0 }],
    [["--run-ms", "300-900", "--fail-rate", "0.5"], { runMs: [300, 900], failRate: 0.5 }],
    [["--flap-ms", "off"], { flapEveryMs: null }],
    [["--flap-ms=5000-8000"], { flapEveryMs: [5000, 8000] }],
  ])("%p", (args, value) => {
    expect(parseDemoArgs(args)).toEqual({ ok: true, value } as never);
  });

  test.each([
    [["--rate"], 'demo --rate: expected a number from 0 to 1000, got ""'],
    [["--rate", "-1"], 'demo --rate: expected a number from 0 to 1000, got "-1"'],
    [["--run-ms", "900-300"], 'demo --run-ms: expected MIN-MAX in ms, got "900-300"'],
    [["--fail-rate", "2"], 'demo --fail-rate: expected a number from 0 to 1, got "2"'],
    [
      ["--flap-ms", "10-20"],
      'demo --flap-ms: expected MIN-MAX in ms (at least 1000), or off, got "10-20"',
    ],
    [["--daemons", "5"], 'demo: unknown argument "--daemons" (see --help)'],
  ])("%p is refused", (args, message) => {
    expect(parseDemoArgs(args)).toEqual({ ok: false, error: message });
  });

  test("--help lines name every option with its default", () => {
    expect(DEMO_USAGE.join("\n")).toMatch(/--rate N .*\[1\]/);
    expect(DEMO_USAGE.join("\n")).toMatch(/--run-ms MIN-MAX .*\[2000-6000\]/);
  });
});
