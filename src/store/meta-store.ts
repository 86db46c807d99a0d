/** Small key/value facts (machine id, counters) as text. */
import { eq, sql } from "drizzle-orm";
import type { MetaStore } from "../core/ports.ts";
import type { RelayDb } from "./database.ts";
import { meta } from "./schema.ts";

const p = sql.placeholder;

export function createMetaStore(db: RelayDb): MetaStore {
  const getStmt = db
    .select({ value: meta.value })
    .from(meta)
    .where(eq(meta.key, p("key")))
    .prepare();
  const setStmt = db
    .insert(meta)
    .values({ key: p("key"), value: p("value") })
    .onConflictDoUpdate({ target: meta.key, set: { value: sql`excluded.value` } })
    .prepare();
  // Counters are read once and then kept in memory: the relay is the only
  // writer of its file, and a counter bumped on every spawn should cost one
  // plain write, not a read-modify-write with RETURNING.
  const counters = new Map<string, number>();

  return {
    get: (key) => getStmt.get({ key })?.value ?? null,
    set: (key, value) => {
      counters.delete(key);
      setStmt.run({ key, value });
    },
    increment: (key, by = 1) => {
      const next = (counters.get(key) ?? (Number(getStmt.get({ key })?.value ?? 0) || 0)) + by;
      counters.set(key, next);
      setStmt.run({ key, value: String(next) });
      return next;
    },
  };
}
