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
  // One statement, so concurrent increments cannot lose an update. SQLite's `+`
  // reads the text operands as numbers; the TEXT column stores the sum as text.
  const incrementStmt = db
    .insert(meta)
    .values({ key: p("key"), value: sql`${p("by")}` })
    .onConflictDoUpdate({ target: meta.key, set: { value: sql`${meta.value} + excluded.value` } })
    .returning({ value: meta.value })
    .prepare();

  return {
    get: (key) => getStmt.get({ key })?.value ?? null,
    set: (key, value) => {
      setStmt.run({ key, value });
    },
    increment: (key, by = 1) => Number(incrementStmt.get({ key, by })?.value),
  };
}
