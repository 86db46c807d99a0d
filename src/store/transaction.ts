import type { Database } from "bun:sqlite";

/** Runs `fn` in one SQLite transaction; nested calls become savepoints. */
export type Transactor = <T>(fn: () => T) => T;

/**
 * bun:sqlite transactions are synchronous. An async callback would commit when it
 * returns its promise, before its awaited work runs (drizzle#1472, #2275), so a
 * thenable result is a bug: throw inside the transaction so it rolls back.
 */
export function createTransactor(sqlite: Database): Transactor {
  // Built once: sqlite.transaction() compiles BEGIN/COMMIT/SAVEPOINT statements.
  const run = sqlite.transaction((fn: () => unknown) => {
    const result = fn();
    if (isThenable(result)) {
      throw new TypeError("transaction callback returned a promise; it must be synchronous");
    }
    return result;
  });
  return <T>(fn: () => T) => run(fn) as T;
}

function isThenable(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
