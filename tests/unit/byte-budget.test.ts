/**
 * One daemon's expensive frames cost that daemon: next to its frame budget
 * each daemon has a byte budget (characters of frame text a second, with a
 * burst). Over it the daemon is slowed, never dropped, exactly like the frame
 * budget: its socket is paused until the debt is repaid, every frame is still
 * handled in order, and the other daemons are read as before. A heartbeat
 * listing far more ids than the daemon could hold is refused.
 */
import { describe, expect, test } from "bun:test";
import { TokenBucket } from "../../src/core/rate-limit.ts";
import { HEARTBEAT_EXTRA_IDS } from "../../src/protocol/messages.ts";
import { relayHarness } from "./relay-harness.ts";

/** An output frame of exactly `n` characters. */
const output = (taskId: string, i: number, n: number): string => {
  const base = `{"type":"taskOutput","taskId":"${taskId}","i":${i},"p":""}`;
  return base.replace('"p":""', `"p":"${"x".repeat(n - base.length)}"`);
};

test("a bucket takes a cost per frame: a frame larger than what is left runs it into debt", () => {
  const bucket = new TokenBucket(1000, 2000, 0);
  expect(bucket.take(0, 1500)).toBe(false);
  expect(bucket.take(0, 1500)).toBe(true);
  // 1,000 in debt; reading resumes once a tenth of the rate (100) is back: 1.1 s.
  expect(bucket.resumeIn(0)).toBe(1100);
  expect(bucket.resumeIn(1100)).toBe(0);
});

describe("Relay byte budget", () => {
  const BYTES = { daemonByteRate: 10_000, daemonByteBurst: 20_000 };

  test("a daemon over its bytes is paused; every frame is handled in order; it resumes when the debt is repaid", () => {
    const h = relayHarness(BYTES);
    const big = h.daemon("big", 1);
    const other = h.daemon("other", 1);
    h.spawn("tb");
    h.spawn("to");
    h.forwarded.length = 0;
    // Five frames of 5,000 characters: far under the frame budget (2,000 frames), 25,000 bytes
    // against a burst of 20,000: the fourth empties the bucket.
    const sent = Array.from({ length: 5 }, (_, i) => output("tb", i, 5000));
    for (const f of sent) h.send(big, f);
    expect([...h.paused]).toEqual([big.id]);
    expect(h.forwarded.map((f) => f.text)).toEqual(sent);
    expect(h.errors(big)).toEqual([]);
    expect(h.relay.stats).toMatchObject({ throttleEpisodes: 1, throttledNow: 1 });
    expect(h.log.events("daemon_throttled")[0]?.details).toContain("10000 bytes/s");
    // The other daemon is read as before.
    h.send(other, output("to", 0, 5000));
    expect(h.forwarded.at(-1)?.text).toBe(output("to", 0, 5000));
    expect(h.paused.has(other.id)).toBe(false);
    // 5,000 in debt at 10,000/s; reading resumes once a tenth of the rate is back: 600 ms.
    h.clock.advance(590);
    expect(h.paused.has(big.id)).toBe(true);
    h.clock.advance(10);
    expect(h.paused.size).toBe(0);
    expect(h.relay.stats.throttledNow).toBe(0);
  });

  test("small frames do not touch the byte budget before the frame budget", () => {
    const h = relayHarness({ ...BYTES, daemonRate: 10, daemonBurst: 20 });
    const d = h.daemon("m", 1);
    for (let i = 0; i < 19; i++) h.send(d, { type: "heartbeat", activeTasks: [] });
    expect(h.paused.size).toBe(0);
    h.send(d, { type: "heartbeat", activeTasks: [] });
    expect(h.log.events("daemon_throttled")[0]?.details).toContain("10 frames/s");
  });

  test("without a byte budget (option absent) only frames count", () => {
    const h = relayHarness();
    const d = h.daemon("m", 1);
    h.spawn("t");
    for (let i = 0; i < 20; i++) h.send(d, output("t", i, 50_000));
    expect(h.paused.size).toBe(0);
  });

  test("a child relay has no byte budget either", () => {
    const h = relayHarness(BYTES);
    const child = h.daemon("child", 1, { role: "relay" });
    h.spawn("t");
    for (let i = 0; i < 10; i++) h.send(child, output("t", i, 5000));
    expect(h.paused.size).toBe(0);
    expect(h.relay.stats.throttleEpisodes).toBe(0);
  });
});

describe("Relay heartbeat length", () => {
  const ids = (n: number, prefix = "x") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  test("a daemon's heartbeat listing more than its capacity or holding plus the margin is refused and does not count", () => {
    const h = relayHarness();
    const d = h.daemon("m1", 2);
    h.spawn("t1");
    d.close(1006, "");
    const back = h.daemon("m1", 2);
    // The first heartbeat after reattaching settles t1; a refused one must not.
    const bound = 2 + HEARTBEAT_EXTRA_IDS;
    h.send(back, { type: "heartbeat", activeTasks: ids(bound + 1) });
    expect(h.errors(back)).toEqual([
      `badMessage: invalid field "activeTasks": ${bound + 1} ids, over the limit of ${bound} (capacity or tasks held, plus ${HEARTBEAT_EXTRA_IDS})`,
    ]);
    expect(h.status("t1")).toBe("dispatched");
    expect(h.lastHeartbeat(back.id)).toBeNull();
    // At the bound it counts: t1 is not listed, so it is lost.
    h.send(back, { type: "heartbeat", activeTasks: ids(bound) });
    expect(h.errors(back)).toHaveLength(1);
    expect(h.status("t1")).toBe("lost");
  });

  test("a child relay's heartbeat (its own queue included) is not bounded", () => {
    const h = relayHarness();
    const child = h.daemon("child", 1, { role: "relay" });
    h.send(child, { type: "heartbeat", activeTasks: ids(5 * HEARTBEAT_EXTRA_IDS) });
    expect(h.errors(child)).toEqual([]);
    expect(h.lastHeartbeat(child.id)).not.toBeNull();
  });
});
