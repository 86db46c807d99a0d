/**
 * Is a peer address the local machine? Used to keep write routes local when no
 * admin token is set. Pure and strict: anything that is not a well-formed
 * loopback address (127.0.0.0/8, ::1, or 127/8 mapped into IPv6 per RFC 4291
 * §2.5.5.2) is not loopback, including "", "unknown" and zone-scoped addresses.
 */
import { isIP } from "node:net";

export function isLoopback(address: string): boolean {
  switch (isIP(address)) {
    case 4:
      return address.startsWith("127.");
    case 6: {
      const groups = ipv6Groups(address);
      if (!groups) return false;
      const zerosBefore = (n: number) => groups.slice(0, n).every((g) => g === 0);
      if (zerosBefore(7) && groups[7] === 1) return true; // ::1
      // ::ffff:127.x.x.x (also written ::ffff:7f00:1): a dual-stack socket's view of 127/8.
      return zerosBefore(5) && groups[5] === 0xffff && (groups[6] ?? 0) >> 8 === 127;
    }
    default:
      return false;
  }
}

/** The eight 16-bit groups of a valid IPv6 address (as `isIP` accepts it), or null. */
function ipv6Groups(address: string): number[] | null {
  // A zone (fe80::1%eth0) names an interface; no loopback address needs one.
  if (address.includes("%")) return null;
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : null;
}

/**
 * Does a Host header name this machine's loopback (localhost, *.localhost per
 * RFC 6761 §6.3, or a loopback address, with or without a port)? A page on
 * another site can make its own name resolve to 127.0.0.1 (DNS rebinding), so
 * a loopback peer alone does not prove a local caller: the browser still
 * sends that site's name as Host.
 */
export function isLoopbackHost(host: string | null): boolean {
  if (!host) return false;
  const name = host
    .trim()
    .toLowerCase()
    .replace(/:\d+$/, "")
    .replace(/^\[(.*)\]$/, "$1");
  return name === "localhost" || name.endsWith(".localhost") || isLoopback(name);
}
