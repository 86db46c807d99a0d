import { describe, expect, test } from "bun:test";
import { normaliseServerUrl, redactUrl } from "../../src/protocol/url.ts";

describe("normaliseServerUrl", () => {
  const ok: [string, string][] = [
    ["http://makima.example", "ws://makima.example/ws/daemon"],
    ["https://makima.example", "wss://makima.example/ws/daemon"],
    ["ws://makima.example", "ws://makima.example/ws/daemon"],
    ["wss://makima.example:8443", "wss://makima.example:8443/ws/daemon"],
    ["https://makima.example/", "wss://makima.example/ws/daemon"],
    ["https://makima.example/api/", "wss://makima.example/api/ws/daemon"],
    ["https://makima.example/api", "wss://makima.example/api/ws/daemon"],
    ["wss://makima.example/ws/daemon", "wss://makima.example/ws/daemon"],
    ["http://makima.example/base/ws/daemon", "ws://makima.example/base/ws/daemon"],
    ["wss://makima.example/ws/daemon/", "wss://makima.example/ws/daemon"],
    ["  https://makima.example  ", "wss://makima.example/ws/daemon"],
    ["HTTPS://Makima.Example", "wss://makima.example/ws/daemon"],
    ["http://127.0.0.1:3000", "ws://127.0.0.1:3000/ws/daemon"],
    ["http://[::1]:3000/", "ws://[::1]:3000/ws/daemon"],
  ];
  test.each(ok)("%s → %s", (input, expected) => {
    expect(normaliseServerUrl(input)).toEqual({ ok: true, value: expected });
  });

  const bad: [string, RegExp][] = [
    ["ftp://makima.example", /scheme/],
    ["file:///etc/passwd", /scheme/],
    ["mailto:someone@example.com", /scheme/],
    ["makima.example", /not a valid URL/],
    ["garbage", /not a valid URL/],
    ["", /not a valid URL/],
    ["http://", /not a valid URL/],
  ];
  test.each(bad)("rejects %p", (input, reason) => {
    const r = normaliseServerUrl(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(reason);
  });
});

describe("redactUrl", () => {
  const cases: [string, string][] = [
    ["wss://user:pw@makima.example/ws/daemon?token=abc", "wss://makima.example/ws/daemon"],
    ["ws://onlyuser@h:9/ws/daemon", "ws://h:9/ws/daemon"],
    ["wss://makima.example/ws/daemon", "wss://makima.example/ws/daemon"],
    ["not a url", "<invalid url>"],
  ];
  test.each(cases)("%s → %s", (input, expected) => {
    const out = redactUrl(input);
    expect(out).toBe(expected);
    for (const secret of ["pw", "abc", "onlyuser", "token"]) {
      if (input.includes(secret) && out !== "<invalid url>") expect(out).not.toContain(secret);
    }
  });
});

test("a fragment is dropped from the server URL and from logged URLs", () => {
  expect(normaliseServerUrl("wss://makima.example/base#token=abc")).toEqual({
    ok: true,
    value: "wss://makima.example/base/ws/daemon",
  });
  expect(redactUrl("wss://u:p@makima.example/ws/daemon?key=1#frag")).toBe(
    "wss://makima.example/ws/daemon",
  );
});
