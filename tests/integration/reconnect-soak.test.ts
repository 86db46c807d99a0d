/**
 * Reconnect loops have leaked before (sockets, listeners, timers): 300 forced
 * upstream drops must leave the heap where it was and exactly one live link.
 */
import { expect, test } from "bun:test";
import { startSimServer } from "../../src/sim/index.ts";
import { startTestRelay } from "../helpers/relay.ts";

const CYCLES = 300;

test("300 upstream drops and reconnects leak nothing", async () => {
  await using server = startSimServer();
  await using relay = await startTestRelay({
    env: {
      MAKIMA_SERVER_URL: server.url,
      MAKIMA_RELAY_RECONNECT_BASE_MS: "1",
      MAKIMA_RELAY_RECONNECT_MAX_MS: "2",
      MAKIMA_RELAY_LOG_LEVEL: "warn",
    },
  });
  let conn = await server.waitForConnection();
  const cycle = async (): Promise<void> => {
    const previous = conn.connId;
    server.disconnectAll(1012, "restart");
    conn = await server.waitForConnection(5000, (c) => c.connId !== previous);
  };
  for (let i = 0; i < 20; i++) await cycle(); // warm up JIT and pools
  relay.logs.clear();
  Bun.gc(true);
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < CYCLES; i++) await cycle();
  Bun.gc(true);
  const grown = process.memoryUsage().heapUsed - before;
  console.log(`reconnect soak: ${CYCLES} cycles, heap change ${(grown / 1e6).toFixed(2)} MB`);
  expect(server.connections).toHaveLength(1);
  expect(relay.link.state.kind === "open" || relay.link.state.kind === "authenticating").toBe(true);
  expect(grown).toBeLessThan(8 * 1024 * 1024);
}, 60_000);
