import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { readMigrationFiles } from "drizzle-orm/migrator";
import journal from "../../drizzle/meta/_journal.json";
import { openDatabase } from "../../src/store/database.ts";
import { embeddedMigrations, SQL_BY_TAG } from "../../src/store/migrations.ts";
import { tempDir } from "./helpers.ts";

const FOLDER = join(import.meta.dir, "../../drizzle");

/** The `name` column of a query over the schema. */
const names = (sqlite: Database, select: string): string[] =>
  sqlite
    .query<{ name: string }, []>(select)
    .all()
    .map((r) => r.name);

describe("embedded migrations", () => {
  test("every drizzle/*.sql file is embedded and in the journal", () => {
    const files = readdirSync(FOLDER)
      .filter((f) => f.endsWith(".sql"))
      .map((f) => f.slice(0, -".sql".length))
      .sort();
    expect(files.length).toBeGreaterThan(0);
    // A generated migration that was not added to SQL_BY_TAG fails here.
    expect(Object.keys(SQL_BY_TAG).sort()).toEqual(files);
    expect(journal.entries.map((e) => e.tag).sort()).toEqual(files);
  });

  test("journal timestamps strictly increase in journal order", () => {
    // drizzle applies only migrations newer than the last applied `when`: one with an
    // older timestamp (say, from a merged branch) would be skipped silently.
    const whens = journal.entries.map((e) => e.when);
    expect(whens.every((w, i) => i === 0 || w > (whens[i - 1] ?? 0))).toBe(true);
  });

  test("match what drizzle's file-based migrator would apply, hash included", () => {
    expect(embeddedMigrations()).toEqual(readMigrationFiles({ migrationsFolder: FOLDER }));
  });

  test("a journal entry without embedded SQL is refused", () => {
    const entries = [{ tag: "9999_missing", when: 1, breakpoints: true }];
    expect(() => embeddedMigrations(entries, {})).toThrow(/9999_missing/);
  });

  test("are recorded in the standard __drizzle_migrations table once", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    openDatabase(file).close();
    openDatabase(file).close();
    using sqlite = new Database(file);
    const rows = sqlite
      .query<{ hash: string; created_at: number }, []>(
        "SELECT hash, created_at FROM __drizzle_migrations ORDER BY id",
      )
      .all();
    expect(rows).toEqual(
      embeddedMigrations().map((m) => ({ hash: m.hash, created_at: m.folderMillis })),
    );
    const tables = names(
      sqlite,
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    expect(tables).toEqual([
      "__drizzle_migrations",
      "connection_log",
      "held_commands",
      "machine_bindings",
      "meta",
      "outbox",
      "task_events",
      "tasks",
    ]);
  });

  test("leave each table the indexes its queries need and no more", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    openDatabase(file).close();
    using sqlite = new Database(file);
    const indexes = names(
      sqlite,
      `SELECT tbl_name || '.' || name AS name FROM sqlite_master
       WHERE type = 'index' AND tbl_name <> '__drizzle_migrations' ORDER BY tbl_name, name`,
    );
    // Each index is written on every insert into its table: one more must be a decision.
    expect(indexes).toEqual([
      "connection_log.connection_log_aggregate_key_idx",
      "connection_log.connection_log_security_id_idx",
      "held_commands.held_commands_task_idx",
      "machine_bindings.sqlite_autoindex_machine_bindings_1",
      "meta.sqlite_autoindex_meta_1",
      "outbox.outbox_critical_id_idx",
      "task_events.sqlite_autoindex_task_events_1",
      "tasks.sqlite_autoindex_tasks_1",
      "tasks.tasks_completed_idx",
      "tasks.tasks_received_idx",
      "tasks.tasks_status_seq_idx",
    ]);
  });
});
