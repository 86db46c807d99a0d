import { expect, test } from "bun:test";
import { addressKey } from "../../src/core/address-key.ts";

test.each([
  ["127.0.0.1", "127.0.0.1"],
  ["::ffff:10.1.2.3", "10.1.2.3"],
  ["::FFFF:10.1.2.3", "10.1.2.3"],
  ["2001:db8::1", "2001:db8:0:0::/64"],
  ["2001:db8:0:0:ffff::2", "2001:db8:0:0::/64"],
  ["2001:0db8:0000:0000:1:2:3:4", "2001:db8:0:0::/64"],
  ["2001:db8:0:1::1", "2001:db8:0:1::/64"],
  ["fe80::1%eth0", "fe80:0:0:0::/64"],
  ["::1", "0:0:0:0::/64"],
  ["64:ff9b::192.0.2.1", "64:ff9b:0:0::/64"],
  ["unknown", "unknown"],
  ["1:2:3", "1:2:3"],
])("%s counts as %s", (address, key) => {
  expect(addressKey(address)).toBe(key);
});

test("two addresses of one /64 are one source; another /64 is another", () => {
  expect(addressKey("2001:db8::1")).toBe(addressKey("2001:db8::beef:2"));
  expect(addressKey("2001:db8::1")).not.toBe(addressKey("2001:db8:0:1::1"));
});
