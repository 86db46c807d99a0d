/** Starts the relay in-process for integration tests: real sockets, a real SQLite file. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConfigIo, loadConfig, rereadSecrets } from "../../src/config/config.ts";
import {
  type RelayServer,
  type RelayServerOverrides,
  startRelayServer,
} from "../../src/relay-server.ts";
import { Recorder } from "../../src/sim/wait.ts";

export const TEST_KEY = "test-key-0123456789";

export interface TestRelay extends RelayServer {
  dir: string;
  dbPath: string;
  /** Parsed JSON log lines, waitable. */
  logs: Recorder<Record<string, unknown>>;
  daemonUrl: string;
  get(path: string, init?: RequestInit): Promise<Response>;
  json<T = Record<string, unknown>>(path: string, init?: RequestInit): Promise<T>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface TestRelayOptions {
  env?: Record<string, string>;
  /** Reuse a directory (and its database) from an earlier relay. */
  dir?: string;
  overrides?: RelayServerOverrides;
  keepDir?: boolean;
}

/** The environment a test relay runs with: test defaults under the test's own. */
function testEnv(env: Record<string, string>, dir: string): Record<string, string> {
  return {
    MAKIMA_API_KEY: TEST_KEY,
    MAKIMA_RELAY_HOST: "127.0.0.1",
    MAKIMA_RELAY_PORT: "0",
    MAKIMA_RELAY_DB: join(dir, "relay.db"),
    MAKIMA_RELAY_RECONNECT_BASE_MS: "20",
    MAKIMA_RELAY_RECONNECT_MAX_MS: "200",
    MAKIMA_RELAY_HEARTBEAT_MS: "1000",
    MAKIMA_RELAY_LOG_LEVEL: "debug",
    ...env,
  };
}

const testIo = (dir: string): ConfigIo => ({
  readFile: (p) => readFileSync(p, "utf8"),
  cwd: dir,
  hostname: "test-host",
});

export function configFor(env: Record<string, string>, dir: string) {
  const loaded = loadConfig(testEnv(env, dir), [], testIo(dir));
  if (!loaded.ok) throw new Error(loaded.error);
  return loaded.value.config;
}

export async function startTestRelay(opts: TestRelayOptions = {}): Promise<TestRelay> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "makima-relay-test-"));
  const config = configFor(opts.env ?? {}, dir);
  const logs = new Recorder<Record<string, unknown>>("relay logs", (l) =>
    JSON.stringify(l).slice(0, 200),
  );
  const server = await startRelayServer(config, {
    write: (line) => logs.push(JSON.parse(line)),
    // As the binary does on SIGHUP: the same env, the files read again.
    rereadSecrets: () => rereadSecrets(testEnv(opts.env ?? {}, dir), [], testIo(dir)),
    ...opts.overrides,
  });
  const get = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
  return Object.assign(server, {
    dir,
    dbPath: config.dbPath,
    logs,
    daemonUrl: `ws://127.0.0.1:${server.port}/ws/daemon`,
    get,
    async json<T>(path: string, init?: RequestInit): Promise<T> {
      const res = await get(path, init);
      return (await res.json()) as T;
    },
    async [Symbol.asyncDispose]() {
      await server.stop();
      if (!opts.keepDir && !opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  });
}
