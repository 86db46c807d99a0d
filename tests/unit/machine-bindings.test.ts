/**
 * A machineId belongs to the key it first authenticated with: another pool's
 * key cannot take it over (4401, a security event), the same key still
 * replaces the connection (4409), and an operator can release the binding.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { TAKEOVER_REFUSED } from "../../src/core/daemon-admission.ts";
import { FINGERPRINT_SECRET, MachineBindings } from "../../src/core/machine-bindings.ts";
import { ManualClock } from "../../src/core/manual-clock.ts";
import { admissionHarness, GRACE, POOL_A, POOL_B, STORE_KINDS } from "./admission-harness.ts";
import { createMemoryStores, MemoryBindingStore, MemoryMetaStore } from "./fakes.ts";

describe.each(STORE_KINDS)("machineId bindings with %s", (_kind, makeStores) => {
  test("another key claiming a connected machineId is refused; the victim keeps its connection and tasks", () => {
    const h = admissionHarness(makeStores());
    const victim = h.authenticate("m-a", POOL_A, "10.0.0.1");
    h.spawn("t1");
    expect(victim.types()).toEqual(["authenticated", "spawnTask"]);

    const attacker = h.authenticate("m-a", POOL_B, "10.6.6.6");
    expect({
      frames: attacker.frames(),
      closed: attacker.closed?.code,
      victimClosed: victim.closed,
      holder: h.relay.registry.byMachineId("m-a")?.conn.id,
      tasks: [...(h.relay.registry.byMachineId("m-a")?.holds ?? [])],
    }).toEqual({
      frames: [{ type: "error", code: "unauthorized", message: TAKEOVER_REFUSED }],
      closed: 4401,
      victimClosed: null,
      holder: victim.id,
      tasks: ["t1"],
    });
    // The server's commands for the task still reach the victim, never the attacker.
    h.relay.serverFrame(JSON.stringify({ type: "sendMessage", taskId: "t1", message: "hi" }));
    expect(victim.types().at(-1)).toBe("sendMessage");
    expect(attacker.types()).toEqual(["error"]);

    const refused = h.log.events("machine_takeover_refused");
    expect(refused.map((e) => [e.level, e.options?.security])).toEqual([["warn", true]]);
    expect(refused[0]?.details).toContain("10.6.6.6");
    expect(refused[0]?.details).toContain("m-a");
    expect(JSON.stringify(h.log.entries)).not.toContain(POOL_B);
    expect(JSON.stringify(h.log.entries)).not.toContain(POOL_A);
    expect(h.log.events("daemon_replaced")).toEqual([]);
  });

  test("the same key replaces the connection (4409) and takes over its tasks", () => {
    const h = admissionHarness(makeStores());
    const first = h.authenticate("m-a", POOL_A);
    h.spawn("t1");
    const second = h.authenticate("m-a", POOL_A, "10.0.0.9");
    expect({
      first: first.closed?.code,
      second: second.types(),
      holder: h.relay.registry.byMachineId("m-a")?.conn.id,
      tasks: [...(h.relay.registry.byMachineId("m-a")?.holds ?? [])],
    }).toEqual({ first: 4409, second: ["authenticated"], holder: second.id, tasks: ["t1"] });
    const replaced = h.log.events("daemon_replaced");
    expect(replaced.map((e) => e.options?.security)).toEqual([true]);
  });

  test("a machineId whose daemon is away (grace period) is still bound: its tasks wait for its key", () => {
    const h = admissionHarness(makeStores());
    const victim = h.authenticate("m-a", POOL_A);
    h.spawn("t1");
    victim.close(1006, "network");
    const attacker = h.authenticate("m-a", POOL_B);
    expect(attacker.closed?.code).toBe(4401);
    expect(attacker.types()).toEqual(["error"]);
    const back = h.authenticate("m-a", POOL_A);
    expect(back.types()).toEqual(["authenticated"]);
    expect([...(h.relay.registry.byMachineId("m-a")?.holds ?? [])]).toEqual(["t1"]);
    h.clock.advance(GRACE + 1);
    expect(h.stores.tasks.get("t1")?.status).toBe("dispatched");
  });

  test("a wrong key is an ordinary auth failure, whatever the machineId", () => {
    const h = admissionHarness(makeStores());
    h.authenticate("m-a", POOL_A);
    const stranger = h.authenticate("m-a", "not-a-key");
    expect(stranger.frames()).toEqual([
      { type: "error", code: "unauthorized", message: "invalid API key" },
    ]);
    expect(h.log.events("machine_takeover_refused")).toEqual([]);
    expect(h.log.events("auth_failed")).toHaveLength(1);
  });

  test("bindings outlive the relay: a new Relay on the same stores refuses the other key", () => {
    const stores = makeStores();
    const before = admissionHarness(stores);
    before.authenticate("m-a", POOL_A);
    before.authenticate("m-b", POOL_B);
    before.relay.stop();
    const after = admissionHarness(stores);
    expect(after.authenticate("m-a", POOL_B).closed?.code).toBe(4401);
    expect(after.authenticate("m-b", POOL_A).closed?.code).toBe(4401);
    expect(after.authenticate("m-a", POOL_A).types()).toEqual(["authenticated"]);
    expect(after.authenticate("m-b", POOL_B).types()).toEqual(["authenticated"]);
  });

  test("stored fingerprints are neither the key nor its plain hash, and differ between relays", () => {
    const one = makeStores();
    const two = makeStores();
    admissionHarness(one).authenticate("m-a", POOL_A);
    admissionHarness(two).authenticate("m-a", POOL_A);
    const [a] = one.bindings.all();
    const [b] = two.bindings.all();
    const sha = createHash("sha256").update(POOL_A).digest("hex");
    expect(a?.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect([
      a?.fingerprint === sha,
      a?.fingerprint.includes(POOL_A),
      a?.fingerprint === b?.fingerprint,
    ]).toEqual([false, false, false]);
    expect(one.meta.get(FINGERPRINT_SECRET)).toMatch(/^[0-9a-f]{64}$/);
  });

  test("release: 404-like answer without a binding; a connected daemon stays unless asked", () => {
    const h = admissionHarness(makeStores());
    expect(h.relay.releaseBinding("nobody", false)).toEqual({ ok: false, error: "no binding" });
    const a = h.authenticate("m-a", POOL_A);
    h.spawn("t1");
    expect(h.relay.releaseBinding("m-a", false)).toEqual({
      ok: true,
      value: { disconnected: false },
    });
    expect(a.closed).toBeNull();
    expect(h.stores.bindings.all()).toEqual([]);
    const released = h.log.events("binding_released");
    expect(released.map((e) => [e.level, e.options?.security])).toEqual([["warn", true]]);
    expect(released[0]?.details).toContain("stays connected");
    // Released: the next key to authenticate with the machineId takes it (and its tasks).
    const b = h.authenticate("m-a", POOL_B);
    expect([b.types(), a.closed?.code]).toEqual([["authenticated"], 4409]);
    expect([...(h.relay.registry.byMachineId("m-a")?.holds ?? [])]).toEqual(["t1"]);
    // Now bound to pool B's key.
    expect(h.authenticate("m-a", POOL_A).closed?.code).toBe(4401);
  });

  test("release with disconnect closes the daemon with 4401; its tasks wait out the grace period", () => {
    const h = admissionHarness(makeStores());
    const a = h.authenticate("m-a", POOL_A);
    h.spawn("t1");
    expect(h.relay.releaseBinding("m-a", true)).toEqual({
      ok: true,
      value: { disconnected: true },
    });
    expect(a.closed?.code).toBe(4401);
    expect(h.log.events("binding_released")[0]?.details).toContain("disconnected");
    expect(h.stores.tasks.get("t1")?.status).toBe("dispatched");
    const b = h.authenticate("m-a", POOL_B);
    expect(b.types()).toEqual(["authenticated"]);
    expect([...(h.relay.registry.byMachineId("m-a")?.holds ?? [])]).toEqual(["t1"]);
  });

  test("release with disconnect of a machineId with no daemon connected disconnects nothing", () => {
    const h = admissionHarness(makeStores());
    h.authenticate("m-a", POOL_A).close(1000, "bye");
    expect(h.relay.releaseBinding("m-a", true)).toEqual({
      ok: true,
      value: { disconnected: false },
    });
    expect(h.relay.releaseBinding("m-a", true)).toEqual({ ok: false, error: "no binding" });
  });
});

test("two claims in one turn see each other, before any write is committed", () => {
  // A write batch holds writes until the end of the turn: decisions must not wait for them.
  const writes: Array<() => void> = [];
  const held = { write: (apply: () => unknown) => void writes.push(() => void apply()) };
  const store = new MemoryBindingStore(held);
  const bindings = new MachineBindings(store, new MemoryMetaStore(held), new ManualClock());
  expect(bindings.claim("m", POOL_A)).toBe("bound");
  expect(bindings.claim("m", POOL_B)).toBe("other");
  expect(bindings.claim("m", POOL_A)).toBe("same");
  expect(store.all()).toEqual([]);
  for (const w of writes) w();
  expect(store.all().map((b) => b.machineId)).toEqual(["m"]);
});

test("the fingerprint secret is made once and reused", () => {
  const stores = createMemoryStores();
  let made = 0;
  const newSecret = () => `secret-${++made}`;
  new MachineBindings(stores.bindings, stores.meta, new ManualClock(), newSecret).claim(
    "m",
    POOL_A,
  );
  const again = new MachineBindings(stores.bindings, stores.meta, new ManualClock(), newSecret);
  expect([again.claim("m", POOL_A), made, stores.meta.get(FINGERPRINT_SECRET)]).toEqual([
    "same",
    1,
    "secret-1",
  ]);
});
