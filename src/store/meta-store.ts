/** Small key/value facts (the machine id) as text. */
import { eq, sql } from "drizzle-orm";
import type { MetaStore } from "../core/ports.ts";
import { meta } from "./schema.ts";
import type { StoreReader, StoreWriter } from "./store-writer.ts";

const p = sql.placeholder;

export function createMetaStore(reader: StoreReader, writer: StoreWriter): MetaStore {
  const getStmt = reader
    .select({ value: meta.value })
    .from(meta)
    .where(eq(meta.key, p("key")))
    .prepare();
  const setStmt = writer.prepare((db) =>
    db
      .insert(meta)
      .values({ key: p("key"), value: p("value") })
      .onConflictDoUpdate({ target: meta.key, set: { value: sql`excluded.value` } })
      .prepare(),
  );

  return {
    get: (key) => getStmt.get({ key })?.value ?? null,
    set: (key, value) => writer.write((tx) => tx(setStmt).run({ key, value })),
  };
}
