/**
 * The usual stage of an integration test: a sim server, a relay linked to it
 * (real sockets, a real SQLite file) and one authenticated sim daemon, torn
 * down together, daemon first.
 */
import {
  connectSimDaemon,
  type SimDaemon,
  type SimDaemonOptions,
  type SimServer,
  startSimServer,
} from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY, type TestRelay } from "./relay.ts";

export interface Linked {
  server: SimServer;
  relay: TestRelay;
  d: SimDaemon;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startLinked(
  daemon: Omit<SimDaemonOptions, "url" | "apiKey">,
  env: Record<string, string> = {},
): Promise<Linked> {
  const server = startSimServer();
  const relay = await startTestRelay({ env: { MAKIMA_SERVER_URL: server.url, ...env } });
  await server.waitForConnection();
  const d = await connectSimDaemon({ url: relay.daemonUrl, apiKey: TEST_KEY, ...daemon });
  await d.authenticated;
  return {
    server,
    relay,
    d,
    async [Symbol.asyncDispose]() {
      await d[Symbol.asyncDispose]();
      await relay[Symbol.asyncDispose]();
      await server[Symbol.asyncDispose]();
    },
  };
}
