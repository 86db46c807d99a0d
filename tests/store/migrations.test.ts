import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { drizzle } from "drizzle-orm/bun-sqlite";
import { readMigrationFiles } from "drizzle-orm/migrator";
import type { SQLiteSession, SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import journal from "../../drizzle/meta/_journal.json";
import { createStores, openDatabase } from "../../src/store/database.ts";
import { embeddedMigrations, SQL_BY_TAG } from "../../src/store/migrations.ts";
import { tempDir } from "./helpers.ts";

const FOLDER = join(import.meta.dir, "../../drizzle");

/** The `name` column of a query over the schema. */
const names = (sqlite: Database, select: string): string[] =>
  sqlite
    .query<{ name: string }, []>(select)
    .all()
    .map((r) => r.name);

/** A database file as a relay before migration `tag` left it: the migrations older than it only. */
function migratedBefore(file: string, tag: string): Database {
  const sqlite = new Database(file, { strict: true });
  const db = drizzle({ client: sqlite }) as unknown as {
    dialect: SQLiteSyncDialect;
    session: SQLiteSession<"sync", unknown, Record<string, never>, never>;
  };
  db.dialect.migrate(embeddedMigrations(journal.entries.filter((e) => e.tag < tag)), db.session);
  return sqlite;
}

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
    // task_events has none: it is WITHOUT ROWID, its key is the table (migration 0005).
    // tasks lists its history by rowid, which is seq (migration 0007).
    expect(indexes).toEqual([
      "connection_log.connection_log_aggregate_key_idx",
      "connection_log.connection_log_security_id_idx",
      "held_commands.held_commands_task_idx",
      "machine_bindings.sqlite_autoindex_machine_bindings_1",
      "meta.sqlite_autoindex_meta_1",
      "outbox.outbox_droppable_id_idx",
      "tasks.sqlite_autoindex_tasks_1",
      "tasks.tasks_completed_idx",
      "tasks.tasks_status_seq_idx",
    ]);
  });

  test("0005 keeps every task, outbox row, event and the received total of an 0004 database", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      // The database as a relay at 0004 left it.
      using sqlite = migratedBefore(file, "0005");
      sqlite.run(
        `INSERT INTO tasks (task_id, task_name, status, spawn_frame, received_at, completed_at, seq)
         VALUES ('done', 'n', 'completed', '{}', 1, 2, 1), ('queued', 'n', 'pending', '{}', 3, NULL, 2)`,
      );
      sqlite.run(
        `INSERT INTO task_events (task_id, n, at, kind, output_frames, output_bytes)
         VALUES ('done', 0, 1, 'queued', 0, 0), ('done', 1, 2, 'completed', 3, 40)`,
      );
      // Three tasks were pruned before: five received in all.
      sqlite.run("INSERT INTO meta (key, value) VALUES ('totalTasksProcessed', '5')");
      sqlite.run(
        "INSERT INTO outbox (id, frame, bytes, critical) VALUES (7, 'a', 1, 1), (8, 'b', 1, 0)",
      );
    }
    using handle = openDatabase(file);
    const stores = createStores(handle.db, handle.sqlite, { logKeep: 100 });
    expect(stores.tasks.totalReceived()).toBe(5);
    expect(stores.tasks.loadActive().map((t) => t.taskId)).toEqual(["queued"]);
    expect(stores.taskEvents.list("done").map((e) => [e.kind, e.outputBytes])).toEqual([
      ["queued", 0],
      ["completed", 40],
    ]);
    expect(stores.outbox.peekAfter(0, 10).map((e) => [e.id, e.frame, e.critical])).toEqual([
      [7, "a", true],
      [8, "b", false],
    ]);
    // A new row goes after the kept ones, never below them.
    stores.outbox.append("c", true, Number.MAX_SAFE_INTEGER);
    expect(stores.outbox.peekAfter(8, 10).map((e) => [e.id, e.frame])).toEqual([[9, "c"]]);
    const ddl = handle.sqlite
      .query<{ sql: string }, []>("SELECT sql FROM sqlite_master WHERE name = 'task_events'")
      .get()?.sql;
    expect(ddl).toMatch(/WITHOUT ROWID\s*$/);
  });

  test("0006 keeps every event of an 0005 database; task_events loses its foreign key, not WITHOUT ROWID", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using sqlite = migratedBefore(file, "0006");
      sqlite.run(
        `INSERT INTO tasks (task_id, task_name, status, spawn_frame, received_at, completed_at, seq)
         VALUES ('done', 'n', 'completed', '{}', 1, 2, 1)`,
      );
      sqlite.run(
        `INSERT INTO task_events (task_id, n, at, kind, machine_id, detail, upstream, output_frames, output_bytes)
         VALUES ('done', 0, 1, 'queued', NULL, NULL, NULL, 0, 0),
                ('done', 1, 2, 'completed', 'm-1', 'ok', 'sent', 3, 40)`,
      );
    }
    using handle = openDatabase(file);
    const stores = createStores(handle.db, handle.sqlite, { logKeep: 100 });
    expect(stores.taskEvents.list("done")).toEqual([
      {
        n: 0,
        at: 1,
        kind: "queued",
        machineId: null,
        detail: null,
        upstream: null,
        outputFrames: 0,
        outputBytes: 0,
      },
      {
        n: 1,
        at: 2,
        kind: "completed",
        machineId: "m-1",
        detail: "ok",
        upstream: "sent",
        outputFrames: 3,
        outputBytes: 40,
      },
    ]);
    const foreignKeys = handle.sqlite.query("SELECT * FROM pragma_foreign_key_list('task_events')");
    expect(foreignKeys.all()).toEqual([]);
    const ddl = handle.sqlite
      .query<{ sql: string }, []>("SELECT sql FROM sqlite_master WHERE name = 'task_events'")
      .get()?.sql;
    expect(ddl).toMatch(/WITHOUT ROWID\s*$/);
    // Pruning the task takes its events with it, now without a cascade.
    stores.tasks.prune(0);
    expect(stores.taskEvents.list("done")).toEqual([]);
  });

  test("0007 numbers an 0006 database's tasks in seq order: rowid is seq, queue and history keep their order", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using sqlite = migratedBefore(file, "0007");
      // rowids out of seq order (a new attempt kept its old rowid), and one seq twice.
      sqlite.run(
        `INSERT INTO tasks (rowid, task_id, task_name, status, spawn_frame, received_at, seq)
         VALUES (1, 'again', 'n', 'pending', '{}', 9, 9), (2, 'first', 'n', 'pending', '{}', 1, 3),
                (3, 'done', 'n', 'completed', '{}', 2, 4), (4, 'twin', 'n', 'pending', '{}', 5, 4)`,
      );
    }
    using handle = openDatabase(file);
    const stores = createStores(handle.db, handle.sqlite, { logKeep: 100 });
    const rows = handle.sqlite
      .query<{ rowid: number; task_id: string; seq: number }, []>(
        "SELECT rowid, task_id, seq FROM tasks ORDER BY rowid",
      )
      .all();
    expect(rows).toEqual([
      { rowid: 1, task_id: "first", seq: 1 },
      { rowid: 2, task_id: "done", seq: 2 },
      { rowid: 3, task_id: "twin", seq: 3 },
      { rowid: 4, task_id: "again", seq: 4 },
    ]);
    expect(stores.tasks.loadActive().map((t) => t.taskId)).toEqual(["first", "twin", "again"]);
    stores.tasks.savePending({ taskId: "new", taskName: "n", spawnFrame: "{}", receivedAt: 10 });
    const history = stores.tasks.list({ limit: 10, offset: 0 }).tasks.map((t) => t.taskId);
    expect(history).toEqual(["new", "again", "twin", "done", "first"]);
    expect(
      handle.sqlite
        .query<{ rowid: number }, []>("SELECT rowid FROM tasks WHERE task_id = 'new'")
        .get(),
    ).toEqual({ rowid: 5 });
  });
});
