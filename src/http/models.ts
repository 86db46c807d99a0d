/**
 * TypeBox models shared by several route plugins. Each feature keeps its own
 * models in its file; only the pieces reused across files live here.
 */
import { type IntegerOptions, type TUnsafe, Type } from "@sinclair/typebox";
import { t } from "elysia";

/**
 * A plain integer. Elysia's `t.Integer` is a coercing union (numeric string or
 * integer) meant for input, which would make every count in the spec read
 * "string or integer"; responses are real numbers.
 */
export function Int(options?: IntegerOptions) {
  return Type.Integer(options);
}

/**
 * One of a few strings, as `anyOf` of constants. `t.UnionEnum` would also put
 * `default: <first value>` in the spec, which misdocuments a response field.
 */
export function OneOf<const V extends string>(
  values: readonly V[],
  options?: { description?: string },
): TUnsafe<V> {
  // Unsafe keeps the Union kind (so it is still validated) and gives the static type V.
  return Type.Unsafe<V>(
    Type.Union(
      values.map((v) => Type.Literal(v)),
      options,
    ),
  );
}

/** Every error the API sends: one human-readable message that names the culprit. */
export const ErrorBody = t.Object(
  { error: t.String({ description: "What went wrong, naming the parameter at fault" }) },
  { description: "An error" },
);

/** A point in time on the wire: ISO-8601 (UTC), or null when it has not happened. */
export const IsoTime = t.Union([t.String({ format: "date-time" }), t.Null()]);

/** The store and the core keep integer milliseconds; the API speaks ISO-8601. */
export function isoOrNull(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
