/**
 * Migrations embedded in the bundle. drizzle's `migrate()` reads `drizzle/` from
 * disk at runtime, which a `bun build --compile` binary does not have ("Can't
 * find meta/_journal.json file"); static text imports are bundled instead.
 *
 * To add a migration:
 *   1. change `schema.ts` and run `bun run db:generate` (writes drizzle/NNNN_name.sql
 *      and a journal entry);
 *   2. add `import mNNNN from "../../drizzle/NNNN_name.sql" with { type: "text" };`
 *      below and an `"NNNN_name": mNNNN` entry to `SQL_BY_TAG`.
 * tests/store/migrations.test.ts fails until step 2 is done.
 *
 * Caveat (drizzle 0.45 `sqlite-core/dialect.ts`): only the journal `when` is compared
 * with the last applied row; hashes are stored but never checked. An edited
 * migration never re-runs, and one with an older `when` (from a merged branch)
 * is skipped silently. Never edit an applied migration; generate a new one.
 */
import type { TablesRelationalConfig } from "drizzle-orm";
import type { BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import type { MigrationMeta } from "drizzle-orm/migrator";
import type { SQLiteSession, SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import m0000 from "../../drizzle/0000_init.sql" with { type: "text" };
import m0001 from "../../drizzle/0001_machine_bindings.sql" with { type: "text" };
import m0002 from "../../drizzle/0002_connection_log_security.sql" with { type: "text" };
import m0003 from "../../drizzle/0003_task_events.sql" with { type: "text" };
import m0004 from "../../drizzle/0004_tasks_drop_seq_index.sql" with { type: "text" };
import m0005 from "../../drizzle/0005_store_fewer_pages.sql" with { type: "text" };
import m0006 from "../../drizzle/0006_task_events_without_foreign_key.sql" with { type: "text" };
import m0007 from "../../drizzle/0007_tasks_rowid_is_seq.sql" with { type: "text" };
import journal from "../../drizzle/meta/_journal.json";

/** Every migration file's text, keyed by its journal tag (the file name without `.sql`). */
export const SQL_BY_TAG: Readonly<Record<string, string>> = {
  "0000_init": m0000,
  "0001_machine_bindings": m0001,
  "0002_connection_log_security": m0002,
  "0003_task_events": m0003,
  "0004_tasks_drop_seq_index": m0004,
  "0005_store_fewer_pages": m0005,
  "0006_task_events_without_foreign_key": m0006,
  "0007_tasks_rowid_is_seq": m0007,
};

interface JournalEntry {
  tag: string;
  when: number;
  breakpoints: boolean;
}

/**
 * The journal's migrations in the shape drizzle's `readMigrationFiles` returns,
 * so the `__drizzle_migrations` rows are identical to the file-based migrator's.
 */
export function embeddedMigrations(
  entries: readonly JournalEntry[] = journal.entries,
  sqlByTag: Readonly<Record<string, string>> = SQL_BY_TAG,
): MigrationMeta[] {
  return entries.map((entry) => {
    const text = sqlByTag[entry.tag];
    if (text === undefined) {
      throw new Error(`migration ${entry.tag} is in the journal but not embedded in migrations.ts`);
    }
    return {
      sql: text.split("--> statement-breakpoint"),
      bps: entry.breakpoints,
      folderMillis: entry.when,
      hash: new Bun.CryptoHasher("sha256").update(text).digest("hex"),
    };
  });
}

/**
 * `dialect` and `session` are marked @internal in drizzle's typings but are what
 * `drizzle-orm/bun-sqlite/migrator` itself calls; this is the whole of that function
 * minus the file reading.
 */
interface DrizzleInternals {
  dialect: SQLiteSyncDialect;
  session: SQLiteSession<"sync", unknown, Record<string, unknown>, TablesRelationalConfig>;
}

/** Applies pending embedded migrations in one transaction (drizzle's dialect migrator). */
export function runMigrations<T extends Record<string, unknown>>(db: BunSQLiteDatabase<T>): void {
  const { dialect, session } = db as unknown as DrizzleInternals;
  dialect.migrate(embeddedMigrations(), session);
}
