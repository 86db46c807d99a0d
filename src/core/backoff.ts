import type { Jitter } from "./clock.ts";

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/**
 * Exponential backoff with additive jitter, capped: attempt 0 waits
 * base..2*base, attempt n waits base*2^n plus up to one base of jitter.
 * The jitter spreads reconnects of many relays after a server restart.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, jitter: Jitter): number {
  const exp = policy.baseMs * 2 ** Math.min(attempt, 30);
  return Math.min(exp + jitter() * policy.baseMs, policy.maxMs);
}
