/**
 * The one shape of an expected failure (a bad frame, a bad argument, an
 * unknown binding): a value or an error, told apart by `ok`. Only bugs throw.
 * A leaf module, so protocol/ and every layer above it share it.
 */
export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function err<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}
