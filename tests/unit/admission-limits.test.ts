/**
 * What an unauthenticated socket may cost: a share per source address of the
 * sockets awaiting authenticate (checked before the global cap), a shorter
 * deadline for a first frame under pressure, and a first frame too large to
 * be an `authenticate` refused before it is parsed.
 */
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { MAX_FIRST_FRAME_CHARS, PRESSED_FIRST_FRAME_MS } from "../../src/core/daemon-admission.ts";
import * as parse from "../../src/protocol/parse.ts";
import { AUTH_TIMEOUT, admissionHarness, POOL_A } from "./admission-harness.ts";

const perAddress = (n: number) =>
  `too many connections awaiting authentication from this address (limit: ${n} per address); retry later`;

describe("sockets awaiting authenticate, per address", () => {
  test("one address gets its share; another address still gets in", () => {
    const h = admissionHarness(undefined, {
      maxUnauthenticated: 10,
      maxUnauthenticatedPerAddress: 3,
    });
    const flood = [h.open("10.6.6.6"), h.open("10.6.6.6"), h.open("10.6.6.6")];
    expect(h.relay.connectionRefusal("10.6.6.6")).toBe(perAddress(3));
    expect(h.relay.connectionRefusal("10.0.0.1")).toBeNull();
    const other = h.authenticate("m-1", POOL_A, "10.0.0.1");
    expect(other.types()).toEqual(["authenticated"]);
    // A socket of the flood ends: its address may open one more.
    flood[0]?.close(1000, "bye");
    expect(h.relay.connectionRefusal("10.6.6.6")).toBeNull();
    expect(h.relay.registry.unauthenticatedFrom("10.6.6.6")).toBe(2);
  });

  test("checked before the global cap, so that one address never holds all of it", () => {
    const h = admissionHarness(undefined, {
      maxUnauthenticated: 4,
      maxUnauthenticatedPerAddress: 2,
    });
    h.open("10.6.6.6");
    h.open("10.6.6.6");
    expect(h.relay.connectionRefusal("10.6.6.6")).toBe(perAddress(2));
    h.open("10.0.0.2");
    h.open("10.0.0.3");
    // The global cap is reached by several addresses: every address is refused.
    expect(h.relay.connectionRefusal("10.0.0.4")).toBe(
      "too many connections awaiting authentication; retry later",
    );
    expect(h.relay.connectionRefusal("10.6.6.6")).toBe(perAddress(2));
    expect(h.relay.readiness()).toEqual(["too many connections awaiting authentication"]);
  });

  test("an IPv6 /64 is one source; IPv4-mapped addresses count as IPv4", () => {
    const h = admissionHarness(undefined, { maxUnauthenticatedPerAddress: 2 });
    h.open("2001:db8::1");
    h.open("2001:db8::2:3");
    expect(h.relay.connectionRefusal("2001:db8::ffff")).toBe(perAddress(2));
    expect(h.relay.connectionRefusal("2001:db8:0:1::1")).toBeNull();
    h.open("::ffff:192.0.2.7");
    h.open("192.0.2.7");
    expect(h.relay.connectionRefusal("192.0.2.7")).toBe(perAddress(2));
  });

  test("authenticated daemons do not count against their address", () => {
    const h = admissionHarness(undefined, { maxUnauthenticatedPerAddress: 2 });
    for (let i = 0; i < 5; i++) h.authenticate(`m-${i}`, POOL_A, "10.0.0.1");
    expect(h.relay.registry.size).toBe(5);
    expect(h.relay.connectionRefusal("10.0.0.1")).toBeNull();
  });

  test("without a per-address limit (RelayOptions left it out) only the global cap counts", () => {
    const h = admissionHarness(undefined, { maxUnauthenticated: 3 });
    for (let i = 0; i < 3; i++) h.open("10.6.6.6");
    expect(h.relay.connectionRefusal("10.6.6.6")).toBe(
      "too many connections awaiting authentication; retry later",
    );
  });
});

describe("a first frame under pressure", () => {
  test("past a quarter of its address's share, a socket has 2 s for its first frame", () => {
    const h = admissionHarness(undefined, { maxUnauthenticatedPerAddress: 8 });
    const calm = [h.open("10.6.6.6"), h.open("10.6.6.6")];
    const pressed = [h.open("10.6.6.6"), h.open("10.6.6.6")];
    const elsewhere = h.open("10.0.0.1");
    h.clock.advance(PRESSED_FIRST_FRAME_MS);
    expect(pressed.map((c) => c.closed?.code)).toEqual([4401, 4401]);
    expect(pressed[0]?.frames()).toEqual([
      {
        type: "error",
        code: "unauthorized",
        message: `no frame within ${PRESSED_FIRST_FRAME_MS} ms (many sockets are awaiting authentication)`,
      },
    ]);
    expect([...calm, elsewhere].map((c) => c.closed)).toEqual([null, null, null]);
    h.clock.advance(AUTH_TIMEOUT - PRESSED_FIRST_FRAME_MS);
    expect([...calm, elsewhere].map((c) => c.closed?.code)).toEqual([4401, 4401, 4401]);
  });

  test("past a quarter of the global cap, whatever the address", () => {
    const h = admissionHarness(undefined, { maxUnauthenticated: 8 });
    const calm = ["10.0.0.1", "10.0.0.2"].map((a) => h.open(a));
    const pressed = h.open("10.0.0.3");
    h.clock.advance(PRESSED_FIRST_FRAME_MS);
    expect([pressed.closed?.code, ...calm.map((c) => c.closed)]).toEqual([4401, null, null]);
  });

  test("a socket under pressure that authenticates in time is admitted as usual", () => {
    const h = admissionHarness(undefined, { maxUnauthenticated: 4 });
    h.open("10.0.0.1");
    const conn = h.open("10.0.0.2");
    h.clock.advance(PRESSED_FIRST_FRAME_MS - 1);
    h.send(conn, h.authFrame("m-1", POOL_A));
    h.clock.advance(AUTH_TIMEOUT);
    expect([conn.types(), conn.closed]).toEqual([["authenticated"], null]);
  });

  test("an auth timeout shorter than 2 s stays what it is", () => {
    const h = admissionHarness(undefined, { maxUnauthenticated: 4, authTimeoutMs: 500 });
    h.open("10.0.0.1");
    const conn = h.open("10.0.0.2");
    h.clock.advance(500);
    expect(conn.frames()[0]?.message).toBe("no authenticate frame within the auth timeout");
  });
});

describe("a large first frame", () => {
  const spies: Array<{ mockRestore(): void }> = [];
  afterEach(() => {
    for (const s of spies.splice(0)) s.mockRestore();
  });

  test("over 64 Ki characters is refused without being parsed, even a valid authenticate", () => {
    const h = admissionHarness();
    const parsed = spyOn(parse, "parseDaemonFrame");
    spies.push(parsed);
    const conn = h.open("10.6.6.6");
    const frame = JSON.stringify(h.authFrame("m-big", POOL_A, { pad: "x".repeat(1024 * 1024) }));
    h.send(conn, frame);
    expect({
      parsed: parsed.mock.calls.length,
      frames: conn.frames(),
      closed: conn.closed?.code,
    }).toEqual({
      parsed: 0,
      frames: [
        {
          type: "error",
          code: "badMessage",
          message: `the first frame must be authenticate, at most ${MAX_FIRST_FRAME_CHARS} characters; this one has ${frame.length}`,
        },
      ],
      closed: 4401,
    });
    expect(h.relay.registry.size).toBe(0);
  });

  test("at the bound it is parsed and judged as usual; after authenticate large frames are fine", () => {
    const h = admissionHarness();
    const conn = h.open();
    const base = JSON.stringify(h.authFrame("m-edge", POOL_A, { pad: "" }));
    const frame = JSON.stringify(
      h.authFrame("m-edge", POOL_A, { pad: "x".repeat(MAX_FIRST_FRAME_CHARS - base.length) }),
    );
    expect(frame.length).toBe(MAX_FIRST_FRAME_CHARS);
    h.send(conn, frame);
    expect(conn.types()).toEqual(["authenticated"]);
    h.send(conn, JSON.stringify({ type: "progress", pad: "y".repeat(2 * MAX_FIRST_FRAME_CHARS) }));
    expect(h.forwarded).toHaveLength(1);
    expect(conn.closed).toBeNull();
  });
});
