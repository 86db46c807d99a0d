/**
 * The transaction a write batch applies its operations in, and which SQLite
 * errors say the storage failed (retry) rather than the operation (a bug).
 */
import type { Database } from "bun:sqlite";

/**
 * SQLite's transactions (below) are the real ones; the simulation wraps them
 * to make commits fail on purpose.
 */
export interface TransactionDriver {
  begin(): void;
  commit(): void;
  /** Undoes an open transaction; harmless when SQLite already rolled it back. */
  rollback(): void;
  /** After a full disk: give back what the database can (the WAL beyond the main file). */
  reclaim?(): void;
}

export function sqliteTransactions(sqlite: Database): TransactionDriver {
  // Prepared once: Database.run compiles its SQL on every call, twice a commit.
  const begin = sqlite.prepare("BEGIN");
  const commit = sqlite.prepare("COMMIT");
  return {
    begin: () => begin.run(),
    commit: () => commit.run(),
    rollback: () => {
      try {
        if (sqlite.inTransaction) sqlite.run("ROLLBACK");
      } catch {
        // SQLite already rolled the transaction back itself.
      }
    },
    reclaim: () => {
      try {
        // The WAL keeps every page committed since the last checkpoint: folding it into the
        // main file and truncating it can free as much as the data itself takes.
        sqlite.run("PRAGMA wal_checkpoint(TRUNCATE)");
      } catch {
        // No room even for that: the retry will tell.
      }
    },
  };
}

/**
 * SQLite result codes that say the storage cannot take the write now; any
 * other error from an operation is a bug in that operation.
 */
const STORAGE_CODES = [
  "SQLITE_FULL",
  "SQLITE_IOERR",
  "SQLITE_BUSY",
  "SQLITE_LOCKED",
  "SQLITE_READONLY",
  "SQLITE_CANTOPEN",
  "SQLITE_NOMEM",
  "SQLITE_PROTOCOL",
  "SQLITE_CORRUPT",
  "SQLITE_NOTADB",
  "SQLITE_PERM",
];

/** The SQLite code of a storage failure (e.g. SQLITE_FULL, SQLITE_IOERR_WRITE), or null for a bug. */
export function storageErrorCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return null;
  return STORAGE_CODES.some((c) => code === c || code.startsWith(`${c}_`)) ? code : null;
}
