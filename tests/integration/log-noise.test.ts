/**
 * Noise must not evict the record of an attack from /logs. 300 failed
 * authentications from one address are one row with their count; a takeover
 * attempt after them is in /logs; and it stays there through bad first
 * frames from 200 other addresses, which push every other row out.
 */
import { expect, test } from "bun:test";
import { connectSimDaemon } from "../../src/sim/index.ts";
import { rawUpgrade } from "../helpers/raw-upgrade.ts";
import { startTestRelay } from "../helpers/relay.ts";

const POOL_A = "pool-a-key-0123456789";
const POOL_B = "pool-b-key-9876543210";

interface LogRow {
  event: string;
  details: string;
}

test("a takeover attempt stays in /logs through 300 failures from one address and 200 from others", async () => {
  await using relay = await startTestRelay({
    env: { MAKIMA_RELAY_DAEMON_KEYS: `${POOL_A},${POOL_B}`, MAKIMA_RELAY_LOG_LEVEL: "info" },
  });
  const daemon = (apiKey: string, machineId: string) =>
    connectSimDaemon({ url: relay.daemonUrl, apiKey, machineId });
  const logs = async (limit: number) =>
    (await relay.json<{ logs: LogRow[] }>(`/logs?limit=${limit}`)).logs;
  await using victim = await daemon(POOL_A, "gpu-01");
  await victim.authenticated;

  // 300 wrong keys from 127.0.0.1, 20 at a time (under the per-address limit).
  for (let batch = 0; batch < 15; batch++) {
    const tries = await Promise.all(
      Array.from({ length: 20 }, (_, i) => daemon("wrong-key", `guess-${batch}-${i}`)),
    );
    await Promise.all(tries.map((d) => d.waitForClose()));
  }
  await using attacker = await daemon(POOL_B, "gpu-01");
  expect((await attacker.waitForClose()).code).toBe(4401);
  await relay.logs.waitFor((l) => l.event === "machine_takeover_refused");

  const takeover = ["Daemon from 127.0.0.1 refused: machineId gpu-01 is bound to another key"];
  const first = await logs(200);
  expect({
    takeover: first.filter((l) => l.event === "machine_takeover_refused").map((l) => l.details),
    failures: first.filter((l) => l.event === "auth_failed").map((l) => l.details),
  }).toEqual({
    takeover,
    failures: [
      "Daemon from 127.0.0.1 rejected 300 times in the last minute (latest: invalid API key)",
    ],
  });

  // Then a bad first frame from each of 200 other addresses: 200 rows of noise.
  const others = Array.from({ length: 200 }, (_, i) => rawUpgrade(relay.port, `127.0.1.${i + 1}`));
  await Promise.all(others.map((o) => o.answered));
  for (const o of others) o.sendText("hello");
  await Promise.all(others.map((o) => o.closed));
  await relay.logs.waitFor(
    (l) => l.event === "auth_failed" && String(l.details).includes("127.0.1.200 "),
  );
  for (const limit of [50, 200]) {
    const rows = await logs(limit);
    expect({
      takeover: rows.filter((l) => l.event === "machine_takeover_refused").map((l) => l.details),
      bounded: rows.length <= limit,
    }).toEqual({ takeover, bounded: true });
  }
  expect(victim.closed).toBeUndefined();
}, 30_000);
