import { describe, expect, test } from "bun:test";
import { isLoopback, isLoopbackHost } from "../../src/http/loopback.ts";

describe("isLoopback", () => {
  test.each([
    "127.0.0.1",
    "127.0.0.53",
    "127.255.255.254",
    "::1",
    "0:0:0:0:0:0:0:1",
    "0::1",
    "::ffff:127.0.0.1",
    "::FFFF:127.1.2.3",
    "::ffff:7f00:1",
  ])("%s is loopback", (address) => {
    expect(isLoopback(address)).toBe(true);
  });

  test.each([
    "10.0.0.1",
    "192.168.1.2",
    "128.0.0.1",
    "0.0.0.0",
    "::ffff:10.0.0.1",
    "::ffff:7e00:1",
    "2001:db8::1",
    "::",
    "::2",
    "1::1",
    "fe80::1",
    "::1%lo",
    "",
    "unknown",
    "localhost",
    "127.0.0.1.evil",
    "127.0.0.1.evil.example",
    "evil.127.0.0.1",
    "127.0.0.1:8080",
    " 127.0.0.1",
    "127.0.0.1 ",
    "127.000.0.1",
    "0127.0.0.1",
    "127.0.0.256",
    "127.1",
    "[::1]",
    "::1/128",
    "127.0.0.1, 10.0.0.1",
  ])("%p is not loopback", (address) => {
    expect(isLoopback(address)).toBe(false);
  });
});

describe("isLoopbackHost", () => {
  test.each([
    ["localhost", true],
    ["localhost:8787", true],
    ["LOCALHOST:1", true],
    ["relay.localhost:8787", true],
    ["127.0.0.1:8787", true],
    ["127.9.9.9", true],
    ["[::1]:8787", true],
    ["evil.example", false],
    ["evil.example:8787", false],
    ["localhost.evil.example", false],
    ["127.0.0.1.evil.example", false],
    ["10.0.0.1:8787", false],
    ["", false],
  ])("%s → %p", (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});
