/**
 * The compiled binary, started from an empty directory, serves the docs UI
 * with Scalar embedded (no CDN) and the Prometheus metrics.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBinary, freePort, REPO_ROOT, spawnRelayBinary } from "../helpers/binary.ts";

const BUNDLE = join(REPO_ROOT, "node_modules/@scalar/api-reference/dist/browser/standalone.js");

test("the binary serves /swagger, its embedded script and /metrics", async () => {
  const binary = await ensureBinary();
  const port = await freePort();
  await using relay = spawnRelayBinary({
    binary,
    env: { MAKIMA_RELAY_PORT: String(port), MAKIMA_RELAY_HOST: "127.0.0.1" },
  });
  await relay.waitForHttp("/health", 10_000);
  const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`);
  const pages = await Promise.all([get("/swagger"), get("/swagger")]);
  const script = await get("/swagger/scalar.js");
  const metrics = await get("/metrics");
  const body = new Uint8Array(await script.arrayBuffer());
  expect({
    pages: await Promise.all(
      pages.map(async (p) => [p.status, (await p.text()).includes('src="swagger/scalar.js"')]),
    ),
    script: [script.status, script.headers.get("content-type")],
    sameBundle: Buffer.from(body).equals(readFileSync(BUNDLE)),
    metrics: [metrics.status, metrics.headers.get("content-type")],
    metricsText: (await metrics.text()).includes("# TYPE makima_relay_upstream_connected gauge"),
  }).toEqual({
    pages: [
      [200, true],
      [200, true],
    ],
    script: [200, expect.stringContaining("javascript")],
    sameBundle: true,
    metrics: [200, expect.stringMatching(/^text\/plain; version=0\.0\.4/)],
    metricsText: true,
  });
}, 60_000);
