/** Small key/value facts (the machine id) as text. */
import { eq, sql } from "drizzle-orm";
import type { MetaStore } from "../core/ports.ts";
import type { RelayDb } from "./database.ts";
import { meta } from "./schema.ts";
import type { Writer } from "./write-batch.ts";

const p = sql.placeholder;

export function createMetaStore(db: RelayDb, writer: Writer): MetaStore {
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

  return {
    get: (key) => getStmt.get({ key })?.value ?? null,
    set: (key, value) => writer.write(() => setStmt.run({ key, value })),
  };
}
