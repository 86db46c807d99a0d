/**
 * The drizzle database over the relay's schema. Its own module so that the
 * stores and what wires them (database.ts) both import it without importing
 * each other.
 */
import type { BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import type * as schema from "./schema.ts";

export type RelayDb = BunSQLiteDatabase<typeof schema>;
