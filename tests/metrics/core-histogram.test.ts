import { describe, expect, test } from "bun:test";
import parse from "parse-prometheus-text-format";
import { Registry } from "prom-client";
import { LatencyHistogram, RelayStats } from "../../src/core/stats.ts";
import { CoreHistogram } from "../../src/metrics/core-histogram.ts";

describe("LatencyHistogram", () => {
  test("an observation lands in the first bucket whose bound it does not exceed", () => {
    const h = new LatencyHistogram([0.1, 1]);
    for (const s of [0, 0.1, 0.5, 1, 7]) h.observe(s);
    expect({ counts: [...h.counts], sum: h.sum, count: h.count }).toEqual({
      counts: [2, 2, 1],
      sum: 8.6,
      count: 5,
    });
  });
});

describe("CoreHistogram", () => {
  // Pins the prom-client contract CoreHistogram relies on (Registry reads getForPromString).
  test("exposes the core's buckets cumulatively, with +Inf, _sum and _count", async () => {
    const registry = new Registry();
    const source = new LatencyHistogram([0.005, 0.5]);
    new CoreHistogram({ name: "x_seconds", help: "X.", registry, source });
    source.observe(0.001);
    source.observe(0.2);
    source.observe(3);
    expect(await registry.metrics()).toBe(
      [
        "# HELP x_seconds X.",
        "# TYPE x_seconds histogram",
        'x_seconds_bucket{le="0.005"} 1',
        'x_seconds_bucket{le="0.5"} 2',
        'x_seconds_bucket{le="+Inf"} 3',
        "x_seconds_sum 3.201",
        "x_seconds_count 3",
        "",
      ].join("\n"),
    );
    const [json] = await registry.getMetricsAsJSON();
    // JSON (getMetricsAsJSON) comes from get(): same values, names on each sample.
    expect(json?.values.at(-1) as unknown).toEqual({
      labels: {},
      value: 3,
      metricName: "x_seconds_count",
    });
    expect(parse(await registry.metrics())[0]?.metrics).toEqual([
      { buckets: { "0.005": "1", "0.5": "2", "+Inf": "3" }, sum: "3.201", count: "3" },
    ]);
  });
});

describe("RelayStats relay counters", () => {
  test("bounded types, UTF-8 bytes, and one timed frame in N", () => {
    let t = 0;
    const stats = new RelayStats(() => t);
    stats.frameLatencySampleEvery = 2;
    for (const type of ["taskOutput", "taskOutput", "madeUp"]) {
      stats.frameFromDaemon(1);
      t += 0.5; // ms
      stats.relayedToServer(type, "é");
    }
    stats.relayedToDaemons("spawnTask", "ab");
    stats.relayedToDaemons("whatever", "abc");
    expect({
      up: stats.daemonToServer,
      down: stats.serverToDaemon,
      timed: [stats.frameLatency.count, stats.frameLatency.sum],
    }).toEqual({
      up: {
        frames: { taskComplete: 0, taskStatusChange: 0, taskOutput: 2, taskProgress: 0, other: 1 },
        bytes: 6,
      },
      down: {
        frames: {
          spawnTask: 1,
          pauseTask: 0,
          resumeTask: 0,
          interruptTask: 0,
          sendMessage: 0,
          other: 1,
        },
        bytes: 5,
      },
      timed: [1, 0.0005],
    });
  });
});
