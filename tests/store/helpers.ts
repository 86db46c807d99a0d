import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Stores } from "../../src/core/ports.ts";
import { createStores, openDatabase, type RelayDatabase } from "../../src/store/database.ts";

/** A fresh directory, removed when the `using` scope ends. */
export function tempDir(): { path: string; file(name: string): string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), "relay-store-"));
  return {
    path,
    file: (name) => join(path, name),
    [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }),
  };
}

export type Opened = RelayDatabase & { stores: Stores };

/** A database with the real migrations and its stores; closes with `using`. */
export function openStores(path = ":memory:", logKeep = 100): Opened {
  const handle = openDatabase(path);
  return { ...handle, stores: createStores(handle.db, handle.sqlite, { logKeep }) };
}

export function pending(taskId: string, receivedAt: number, taskName = `name-${taskId}`) {
  return { taskId, taskName, spawnFrame: `{"type":"spawn","taskId":"${taskId}"}`, receivedAt };
}
