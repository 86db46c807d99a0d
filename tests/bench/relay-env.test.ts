/**
 * The benchmark's relay runs with the environment the bench builds and
 * nothing of the caller's shell: a MAKIMA_RELAY_* exported in a terminal
 * must not tune a run unseen, and the results file names every setting.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { parseOptions } from "../../bench/options.ts";
import {
  LIFT_DAEMON_LIMITS,
  maskedRelayEnv,
  nonDefaults,
  type RelayEnvInput,
  relayEnv,
} from "../../bench/relay-env.ts";
import { relaySettings } from "../../bench/report.ts";

const INPUT: RelayEnvInput = {
  serverUrl: "ws://127.0.0.1:9/ws/daemon",
  apiKey: "bench-key-0123456789",
  port: 4321,
  dbPath: "/tmp/run/relay.db",
  home: "/tmp/run",
  tmpDir: "/tmp",
};

const LEAKS = {
  MAKIMA_RELAY_DAEMON_RATE: "7",
  MAKIMA_RELAY_OUTBOX_MAX_BYTES: "1024",
  MAKIMA_RELAY_LOG_LEVEL: "debug",
  BUN_OPTIONS: "--smol",
  SOME_OTHER_VARIABLE: "x",
};

describe("relayEnv", () => {
  const saved: Record<string, string | undefined> = {};
  beforeEach(() => {
    for (const [k, v] of Object.entries(LEAKS)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  afterEach(() => {
    for (const k of Object.keys(LEAKS)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  test("nothing of the caller's environment but PATH and HOME reaches the relay", () => {
    const env = relayEnv(INPUT);
    expect(env.MAKIMA_RELAY_DAEMON_RATE).toBeUndefined();
    expect(env.MAKIMA_RELAY_OUTBOX_MAX_BYTES).toBeUndefined();
    expect(env.MAKIMA_RELAY_LOG_LEVEL).toBeUndefined();
    expect(env.BUN_OPTIONS).toBeUndefined();
    expect(env.SOME_OTHER_VARIABLE).toBeUndefined();
    expect(Object.keys(env).sort()).toEqual(
      [
        "HOME",
        "MAKIMA_API_KEY",
        "MAKIMA_RELAY_DB",
        "MAKIMA_RELAY_HOST",
        "MAKIMA_RELAY_PORT",
        "MAKIMA_SERVER_URL",
        "PATH",
        "TMPDIR",
      ].sort(),
    );
    expect(env.PATH).toBe(process.env.PATH as string);
    expect(env.MAKIMA_RELAY_PORT).toBe("4321");
  });

  test("with defaults nothing counts as a non-default setting", () => {
    expect(nonDefaults(relayEnv(INPUT))).toEqual({});
    expect(relaySettings([record(relayEnv(INPUT), [])])).toBe("relay settings: defaults");
  });

  test("a scenario's tuning and --relay-env are set, and labelled with their reason", () => {
    const env = relayEnv({
      ...INPUT,
      tunings: [LIFT_DAEMON_LIMITS],
      extra: { MAKIMA_RELAY_HISTORY_KEEP: "10" },
    });
    expect(env.MAKIMA_RELAY_DAEMON_RATE).toBe(LIFT_DAEMON_LIMITS.env.MAKIMA_RELAY_DAEMON_RATE);
    expect(nonDefaults(env)).toEqual({
      ...LIFT_DAEMON_LIMITS.env,
      MAKIMA_RELAY_HISTORY_KEEP: "10",
    });
    const line = relaySettings([record(env, [LIFT_DAEMON_LIMITS.why])]);
    expect(line).toContain("**non-default**");
    expect(line).toContain("`MAKIMA_RELAY_HISTORY_KEEP=10`");
    expect(line).toContain(LIFT_DAEMON_LIMITS.why);
  });
});

test("the recorded environment keeps MAKIMA_* only and masks secrets", () => {
  const masked = maskedRelayEnv({
    ...relayEnv(INPUT),
    MAKIMA_RELAY_ADMIN_TOKEN: "hunter2",
    MAKIMA_RELAY_DAEMON_KEYS: "k1,k2",
  });
  expect(masked.PATH).toBeUndefined();
  expect(masked.MAKIMA_API_KEY).toBe("***");
  expect(masked.MAKIMA_RELAY_ADMIN_TOKEN).toBe("***");
  expect(masked.MAKIMA_RELAY_DAEMON_KEYS).toBe("***");
  expect(masked.MAKIMA_RELAY_PORT).toBe("4321");
  expect(JSON.stringify(masked)).not.toContain("hunter2");
});

test("--relay-env takes relay settings only, never where the relay listens", () => {
  const ok = parseOptions(["--relay-env", "MAKIMA_RELAY_HISTORY_KEEP=10", "--quick"]);
  expect(ok.ok && ok.opts.relayEnv).toEqual({ MAKIMA_RELAY_HISTORY_KEEP: "10" });
  const none = parseOptions(["--quick"]);
  expect(none.ok && none.opts.relayEnv).toEqual({});
  for (const bad of ["MAKIMA_RELAY_PORT=1", "PATH=/x", "MAKIMA_RELAY_RATE"]) {
    expect(parseOptions(["--relay-env", bad]).ok).toBe(false);
  }
});

function record(env: Record<string, string>, reasons: string[]) {
  return { label: "t", startMs: 1, env: maskedRelayEnv(env), reasons };
}
