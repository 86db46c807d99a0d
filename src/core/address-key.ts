/**
 * The source that a per-address limit counts (MAKIMA_RELAY_MAX_UNAUTHENTICATED_PER_ADDRESS).
 * An IPv4 address counts as itself, and so does an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, what a dual-stack listener reports). An IPv6 address
 * counts by its /64 prefix: a host or a site is usually given a whole /64
 * (RFC 6177), so counting single IPv6 addresses would let one machine appear
 * as 2^64 sources.
 */
export function addressKey(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  if (mapped) return mapped[1] as string;
  if (!lower.includes(":")) return lower;
  const groups = ipv6Groups(lower.split("%")[0] as string);
  return groups === null ? lower : `${groups.slice(0, 4).join(":")}::/64`;
}

/** The eight groups of an IPv6 address, without leading zeros; null when it is not one. */
function ipv6Groups(address: string): string[] | null {
  const halves = address.split("::");
  if (halves.length > 2) return null;
  const split = (part: string | undefined): string[] => {
    if (!part) return [];
    const groups = part.split(":");
    // A dotted IPv4 tail (64:ff9b::192.0.2.1) fills the last two groups.
    if (groups.at(-1)?.includes(".")) groups.splice(-1, 1, "0", "0");
    return groups;
  };
  const head = split(halves[0]);
  const tail = split(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => Number.parseInt(g, 16).toString(16));
}
