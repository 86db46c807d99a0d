import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

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

/**
 * A key's fingerprint, as machineId bindings store it (machine-bindings.ts):
 * HMAC-SHA256 of the key under a random secret of this relay, in hex. Never
 * the key itself, and not a plain hash either: a plain SHA-256 of a key can be
 * checked against guesses, or against the same key's hash on another relay,
 * by anyone who sees the bindings table; this one only with the secret.
 */
export function createKeyFingerprint(secret: string): (key: string) => string {
  return (key) => createHmac("sha256", secret).update(key).digest("hex");
}

/** 256 random bits, hex: the secret behind key fingerprints. */
export function newFingerprintSecret(): string {
  return randomBytes(32).toString("hex");
}

/** Constant-time equality of two fingerprints (hex strings of equal length). */
export function sameFingerprint(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
