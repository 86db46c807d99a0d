/**
 * Query-string numbers are parsed here, from the raw strings, so "abc", "-1"
 * or "1.5" get a 400 that names the parameter instead of NaN reaching SQL
 * (the original's `parseInt` did exactly that).
 */
import { BadRequestError } from "./errors.ts";

/** A non-negative integer, or `fallback` when the parameter is absent. */
export function parseCount(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) {
    throw new BadRequestError(`'${name}' must be a non-negative integer, got '${raw}'`);
  }
  const n = Number(raw);
  // Digits only, so the one failure left is a number too large to be exact.
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

/** A page size: absent → `fallback`, then clamped to 1..max (0 → 1, as the original did). */
export function parseLimit(raw: string | undefined, fallback: number, max: number): number {
  return Math.min(Math.max(1, parseCount("limit", raw, fallback)), max);
}
