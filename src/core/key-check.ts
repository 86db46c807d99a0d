import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

/**
 * Constant-time key check. Hashing first gives equal-length buffers, so
 * neither the content nor the length of a key leaks through timing; every
 * accepted key is compared, whichever matches.
 */
export function createKeyCheck(keys: readonly string[]): (candidate: string) => boolean {
  const accepted = keys.filter((k) => k.length > 0).map(digest);
  return (candidate) => {
    const probe = digest(candidate);
    let ok = false;
    for (const key of accepted) ok = timingSafeEqual(key, probe) || ok;
    return ok;
  };
}
