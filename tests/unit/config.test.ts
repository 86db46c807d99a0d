import { describe, expect, test } from "bun:test";
import { helpText } from "../../src/cli/help.ts";
import { type Config, loadConfig, upstreamProblem } from "../../src/config/config.ts";
import { flagName, OPTIONS } from "../../src/config/options.ts";

const files: Record<string, string> = {
  "/srv/secrets/api-key": "file-api-key\n",
  "/srv/secrets/api-key-crlf": "crlf-key\r\n",
  "/srv/secrets/two-newlines": "two\n\n",
  "/srv/secrets/daemon-keys": "dk1, dk2,,dk3\n",
  "/abs/key": "abs-key",
};

const io = {
  cwd: "/srv",
  hostname: "edge-1",
  readFile(path: string): string {
    const content = files[path];
    if (content === undefined) throw new Error(`ENOENT: ${path}`);
    return content;
  },
};

function load(env: Record<string, string> = {}, argv: string[] = []): Config {
  const r = loadConfig(env, argv, io);
  if (!r.ok) throw new Error(`unexpected config error: ${r.error}`);
  return r.value.config;
}

function loadError(env: Record<string, string>, argv: string[] = []): string {
  const r = loadConfig(env, argv, io);
  if (r.ok) throw new Error("expected a config error");
  return r.error;
}

describe("loadConfig defaults", () => {
  test("no env, no flags", () => {
    const r = loadConfig({}, [], io);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.rest).toEqual([]);
    // toMatchObject: options added later must not break this test, but these must hold.
    const expected: Partial<Config> & Record<string, unknown> = {
      serverUrl: null,
      apiKey: null,
      agentName: "makima-relay-edge-1",
      hostname: "edge-1",
      host: "0.0.0.0",
      port: 8787,
      dbPath: "/srv/makima-relay.db",
      daemonKeys: [],
      heartbeatMs: 30_000,
      reconnectBaseMs: 1000,
      reconnectMaxMs: 60_000,
      maxReconnects: null,
      connectTimeoutMs: 10_000,
      advertiseCapacity: 0,
      upstreamCa: null,
      authTimeoutMs: 10_000,
      daemonTimeoutMs: 90_000,
      graceMs: 60_000,
      maxFrameBytes: 1_048_576,
      logKeep: 200,
      historyKeep: 100_000,
      outboxMaxBytes: 67_108_864,
      logLevel: "info",
      // Protocol "Defaults for limits".
      daemonRate: 1000,
      daemonBurst: 2000,
      daemonByteRate: 2_097_152,
      daemonByteBurst: 4_194_304,
      maxUnauthenticated: 256,
      maxUnauthenticatedPerAddress: 32,
      adminToken: null,
    };
    expect(r.value.config).toMatchObject(expected);
  });

  test("empty variables fall back to defaults", () => {
    const c = load({ MAKIMA_RELAY_PORT: "", MAKIMA_RELAY_HEARTBEAT_MS: "", MAKIMA_SERVER_URL: "" });
    expect([c.port, c.heartbeatMs, c.serverUrl]).toEqual([8787, 30_000, null]);
  });
});

describe("loadConfig values", () => {
  test("env values are read and normalised", () => {
    const c = load({
      MAKIMA_SERVER_URL: "https://makima.example/",
      MAKIMA_API_KEY: "env-key",
      MAKIMA_AGENT_NAME: "edge-east",
      MAKIMA_RELAY_PORT: "9000",
      MAKIMA_RELAY_DB: "data/relay.db",
      MAKIMA_RELAY_DAEMON_KEYS: "a, b ,,c",
      MAKIMA_RELAY_MAX_RECONNECTS: "5",
      MAKIMA_RELAY_ADVERTISE_CAPACITY: "auto",
      MAKIMA_RELAY_LOG_LEVEL: "debug",
    });
    expect(c.serverUrl).toBe("wss://makima.example/ws/daemon");
    expect(c.apiKey).toBe("env-key");
    expect(c.agentName).toBe("edge-east");
    expect(c.port).toBe(9000);
    expect(c.dbPath).toBe("/srv/data/relay.db");
    expect(c.daemonKeys).toEqual(["a", "b", "c"]);
    expect(c.maxReconnects).toBe(5);
    expect(c.advertiseCapacity).toBe("auto");
    expect(c.logLevel).toBe("debug");
  });

  test(":memory: is kept as is", () => {
    expect(load({ MAKIMA_RELAY_DB: ":memory:" }).dbPath).toBe(":memory:");
  });

  test("flags win over env, in both --flag value and --flag=value forms", () => {
    const env = {
      MAKIMA_RELAY_PORT: "1000",
      MAKIMA_SERVER_URL: "http://env.example",
      MAKIMA_RELAY_GRACE_MS: "5",
      MAKIMA_API_KEY: "env-key",
    };
    const c = load(env, [
      "--port",
      "2000",
      "--server-url=wss://flag.example/x",
      "--grace-ms=7",
      "--api-key",
      "flag-key",
    ]);
    expect(c.port).toBe(2000);
    expect(c.serverUrl).toBe("wss://flag.example/x/ws/daemon");
    expect(c.graceMs).toBe(7);
    expect(c.apiKey).toBe("flag-key");
  });

  test("words that are not options are returned in rest", () => {
    const r = loadConfig({}, ["serve", "--port", "1", "extra"], io);
    expect(r.ok && r.value.rest).toEqual(["serve", "extra"]);
  });

  test("a flag without its value is an error naming the flag", () => {
    expect(loadError({}, ["--port"])).toContain("--port");
  });
});

describe("loadConfig errors name the variable", () => {
  const cases: [string, Record<string, string>, string[], string[]][] = [
    ['port "abc"', { MAKIMA_RELAY_PORT: "abc" }, [], ["MAKIMA_RELAY_PORT", "--port", "abc"]],
    ["port out of range", { MAKIMA_RELAY_PORT: "70000" }, [], ["MAKIMA_RELAY_PORT"]],
    ["port by flag", {}, ["--port=x1"], ["MAKIMA_RELAY_PORT"]],
    [
      "negative timeout",
      { MAKIMA_RELAY_CONNECT_TIMEOUT_MS: "-5" },
      [],
      ["MAKIMA_RELAY_CONNECT_TIMEOUT_MS"],
    ],
    ["zero ms", { MAKIMA_RELAY_AUTH_TIMEOUT_MS: "0" }, [], ["MAKIMA_RELAY_AUTH_TIMEOUT_MS"]],
    ["fractional ms", { MAKIMA_RELAY_HEARTBEAT_MS: "1.5" }, [], ["MAKIMA_RELAY_HEARTBEAT_MS"]],
    [
      "bad URL scheme",
      { MAKIMA_SERVER_URL: "ftp://makima.example" },
      [],
      ["MAKIMA_SERVER_URL", "scheme"],
    ],
    ["garbage URL", { MAKIMA_SERVER_URL: "not a url" }, [], ["MAKIMA_SERVER_URL"]],
    ["log level", { MAKIMA_RELAY_LOG_LEVEL: "loud" }, [], ["MAKIMA_RELAY_LOG_LEVEL"]],
    [
      "capacity too large",
      { MAKIMA_RELAY_ADVERTISE_CAPACITY: "1000001" },
      [],
      ["MAKIMA_RELAY_ADVERTISE_CAPACITY"],
    ],
    [
      "frame bytes too small",
      { MAKIMA_RELAY_MAX_FRAME_BYTES: "10" },
      [],
      ["MAKIMA_RELAY_MAX_FRAME_BYTES"],
    ],
    [
      "max below base",
      { MAKIMA_RELAY_RECONNECT_BASE_MS: "5000", MAKIMA_RELAY_RECONNECT_MAX_MS: "1000" },
      [],
      ["MAKIMA_RELAY_RECONNECT_MAX_MS", "MAKIMA_RELAY_RECONNECT_BASE_MS"],
    ],
    ["unreadable secret file", { MAKIMA_API_KEY_FILE: "missing" }, [], ["MAKIMA_API_KEY_FILE"]],
  ];
  test.each(cases)("%s", (_name, env, argv, needles) => {
    const message = loadError(env, argv);
    for (const n of needles) expect(message).toContain(n);
  });
});

describe("secrets from *_FILE", () => {
  const cases: [string, Record<string, string>, string[], Partial<Config>][] = [
    [
      "trailing newline trimmed",
      { MAKIMA_API_KEY_FILE: "secrets/api-key" },
      [],
      { apiKey: "file-api-key" },
    ],
    ["CRLF trimmed", { MAKIMA_API_KEY_FILE: "secrets/api-key-crlf" }, [], { apiKey: "crlf-key" }],
    [
      "only one newline trimmed",
      { MAKIMA_API_KEY_FILE: "secrets/two-newlines" },
      [],
      { apiKey: "two\n" },
    ],
    ["absolute path", { MAKIMA_API_KEY_FILE: "/abs/key" }, [], { apiKey: "abs-key" }],
    [
      "daemon keys list from a file",
      { MAKIMA_RELAY_DAEMON_KEYS_FILE: "secrets/daemon-keys" },
      [],
      { daemonKeys: ["dk1", "dk2", "dk3"] },
    ],
    ["--api-key-file flag", {}, ["--api-key-file", "secrets/api-key"], { apiKey: "file-api-key" }],
    [
      "a flag's file beats an env value (flags win)",
      { MAKIMA_API_KEY: "env-key" },
      ["--api-key-file=secrets/api-key"],
      { apiKey: "file-api-key" },
    ],
    [
      "an empty value does not hide the file",
      { MAKIMA_API_KEY: "", MAKIMA_API_KEY_FILE: "secrets/api-key" },
      [],
      { apiKey: "file-api-key" },
    ],
    [
      "admin token from a file",
      { MAKIMA_RELAY_ADMIN_TOKEN_FILE: "/srv/secrets/api-key" },
      [],
      { adminToken: "file-api-key" } as Partial<Config>,
    ],
    [
      "a direct value beats the file",
      { MAKIMA_API_KEY: "direct", MAKIMA_API_KEY_FILE: "secrets/api-key" },
      [],
      { apiKey: "direct" },
    ],
  ];
  test.each(cases)("%s", (_name, env, argv, expected) => {
    expect(load(env, argv)).toMatchObject(expected);
  });

  test("errors about secrets never echo the secret", () => {
    const message = loadError({ MAKIMA_API_KEY: "sup3r-s3cret", MAKIMA_RELAY_PORT: "nope" });
    expect(message).not.toContain("sup3r-s3cret");
  });
});

describe("upstreamProblem", () => {
  const cases: [string | null, string | null, RegExp | null][] = [
    [null, null, /MAKIMA_SERVER_URL and MAKIMA_API_KEY/],
    ["http://x", null, /MAKIMA_API_KEY/],
    [null, "k", /MAKIMA_SERVER_URL/],
    ["http://x", "k", null],
  ];
  test.each(cases)("url %p key %p", (url, key, expected) => {
    const env: Record<string, string> = {};
    if (url) env.MAKIMA_SERVER_URL = url;
    if (key) env.MAKIMA_API_KEY = key;
    const problem = upstreamProblem(load(env));
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });
});

describe("--help", () => {
  const text = helpText("9.9.9");

  test("lists every option's flag and variable, and *_FILE for file-backed secrets", () => {
    expect(text).toContain("9.9.9");
    for (const o of OPTIONS) {
      expect(text).toContain(o.env);
      expect(text).toContain(flagName(o.env));
      if (o.fromFile) {
        expect(text).toContain(`${o.env}_FILE`);
        expect(text).toContain(`${flagName(o.env)}-file`);
      }
      if (!o.secret && o.default !== null) expect(text).toContain(`[${o.default}]`);
    }
  });

  test("says what each signal does, SIGHUP's reload included", () => {
    expect(text).toContain(
      "SIGTERM or SIGINT stops cleanly; SIGHUP (or POST /admin/reload) re-reads",
    );
  });

  test("never shows a secret value, even one set in the environment", () => {
    const secrets = {
      MAKIMA_API_KEY: "env-secret-value-1",
      MAKIMA_RELAY_DAEMON_KEYS: "env-secret-2",
      MAKIMA_RELAY_ADMIN_TOKEN: "env-secret-3",
    };
    const saved = { ...process.env };
    Object.assign(process.env, secrets);
    try {
      const withEnv = helpText("1.0.0");
      for (const v of Object.values(secrets)) expect(withEnv).not.toContain(v);
      for (const o of OPTIONS.filter((x) => x.secret)) {
        const line = withEnv.split("\n").find((l) => l.includes(` ${o.env} `));
        expect(line).toContain("secret");
      }
    } finally {
      for (const k of Object.keys(secrets)) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  test("flag names are unique", () => {
    const flags = OPTIONS.map((o) => flagName(o.env));
    expect(new Set(flags).size).toBe(flags.length);
  });
});

test("only secrets take a --…-file flag; any other is left for the command line to refuse", () => {
  const loaded = loadConfig({}, ["--port-file", "8080"], io);
  expect(loaded.ok && loaded.value.rest).toEqual(["--port-file", "8080"]);
  expect(loaded.ok && loaded.value.config.port).toBe(8787);
});

test("the options table is Config: one field per option, plus the machine's hostname", () => {
  const config = load();
  expect(Object.keys(config).sort()).toEqual([...OPTIONS.map((o) => o.key), "hostname"].sort());
});

test("an unset list is a fresh empty list each time, not one shared between configs", () => {
  const a = load();
  a.daemonKeys.push("changed");
  expect(load().daemonKeys).toEqual([]);
});
