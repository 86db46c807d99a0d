/**
 * One address floods /ws/daemon with sockets that never authenticate. It gets
 * its own share of the sockets awaiting authentication (32 by default) and a
 * 503 naming the limit past it, never the global cap: a daemon from another
 * address authenticates at once meanwhile. Under that pressure the idle
 * sockets are closed sooner than the auth timeout, freeing their slots.
 */
import { expect, test } from "bun:test";
import { connectSimDaemon } from "../../src/sim/index.ts";
import { rawUpgrade } from "../helpers/raw-upgrade.ts";
import { startTestRelay, TEST_KEY } from "../helpers/relay.ts";

const FLOOD = 300;
const PER_ADDRESS = 32;
const AUTH_TIMEOUT_MS = 4000;

test("a flood from one address cannot lock out a daemon from another", async () => {
  await using relay = await startTestRelay({
    env: { MAKIMA_RELAY_AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS), MAKIMA_RELAY_LOG_LEVEL: "info" },
  });
  const started = performance.now();
  const flood = Array.from({ length: FLOOD }, () => rawUpgrade(relay.port, "127.0.0.2"));
  const answers = await Promise.all(flood.map((f) => f.answered));
  // While the flood holds its sockets open, a daemon from 127.0.0.1 gets in at once.
  await using daemon = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "elsewhere",
    connectTimeoutMs: 1000,
  });
  expect(await daemon.authenticated).toBeString();

  // The flooder got its share and a 503 naming the limit past it; the relay stays ready.
  const refusals = answers.filter((a) => a.status !== 101);
  expect({
    upgraded: answers.filter((a) => a.status === 101).length,
    refused: refusals.length,
    statuses: [...new Set(refusals.map((a) => a.status))],
    bodies: [...new Set(refusals.map((a) => a.body))],
    waiting: relay.relay.registry.unauthenticatedCount,
    fromFlooder: relay.relay.registry.unauthenticatedFrom("127.0.0.2"),
  }).toEqual({
    upgraded: PER_ADDRESS,
    refused: FLOOD - PER_ADDRESS,
    statuses: [503],
    bodies: [
      JSON.stringify({
        error: `too many connections awaiting authentication from this address (limit: ${PER_ADDRESS} per address); retry later`,
      }),
    ],
    waiting: PER_ADDRESS,
    fromFlooder: PER_ADDRESS,
  });

  expect((await relay.get("/ready")).status).toBe(200);

  // The first quarter of the address's share waited the auth timeout; the sockets opened
  // under pressure had 2 s for a first frame. All of them end with 4401.
  const closes = await Promise.all(
    flood.filter((_, i) => answers[i]?.status === 101).map((f) => f.closed),
  );
  const after = closes.map((c) => c.atMs - started);
  expect({
    codes: [...new Set(closes.map((c) => c.code))],
    early: after.filter((ms) => ms < AUTH_TIMEOUT_MS - 1000).length,
    late: after.filter((ms) => ms >= AUTH_TIMEOUT_MS - 500).length,
  }).toEqual({ codes: [4401], early: PER_ADDRESS - PER_ADDRESS / 4, late: PER_ADDRESS / 4 });
  expect(relay.relay.registry.unauthenticatedCount).toBe(0);
  expect(daemon.closed).toBeUndefined();
}, 20_000);
