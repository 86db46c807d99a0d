/**
 * A stranger's large first frame costs a length check: it is refused before
 * any parse, even when it is a valid `authenticate` with a good key.
 */
import { expect, test } from "bun:test";
import { MAX_FIRST_FRAME_CHARS } from "../../src/core/daemon-admission.ts";
import { connectSimDaemon } from "../../src/sim/index.ts";
import { startTestRelay, TEST_KEY } from "../helpers/relay.ts";

test("a 512 KiB first frame is refused unparsed (badMessage, 4401); a daemon after it gets in", async () => {
  await using relay = await startTestRelay();
  await using big = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "padded",
    authExtra: { pad: "x".repeat(512 * 1024) },
  });
  const error = await big.waitFor((f) => f.msg?.type === "error");
  expect([error.msg.code, error.msg.message, (await big.waitForClose()).code]).toEqual([
    "badMessage",
    expect.stringContaining(
      `the first frame must be authenticate, at most ${MAX_FIRST_FRAME_CHARS} characters`,
    ),
    4401,
  ]);
  expect(relay.relay.registry.byMachineId("padded")).toBeUndefined();
  await using plain = await connectSimDaemon({
    url: relay.daemonUrl,
    apiKey: TEST_KEY,
    machineId: "plain",
  });
  expect(await plain.authenticated).toBeString();
});
