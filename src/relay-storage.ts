/**
 * The relay's database as the composition root uses it: opened with its
 * write batch, the stores over it, the storage status fed to whoever
 * subscribes, and the close that commits what it can first.
 */
import { randomUUID } from "node:crypto";
import type { Config } from "./config/config.ts";
import type { Clock } from "./core/clock.ts";
import { Listeners } from "./core/listeners.ts";
import type { StorageStatus, Stores } from "./core/ports.ts";
import type { Logger } from "./log/logger.ts";
import { createStores, openDatabase, type RelayDatabase } from "./store/database.ts";
import { createWriteBatch, sqliteTransactions } from "./store/write-batch.ts";

export interface Storage {
  database: RelayDatabase;
  stores: Stores;
  /** Told when commits start or stop failing (the write batch's status). */
  status: Listeners<StorageStatus>;
  /** Commits what is left (said in the log when it cannot), then closes the database. */
  close(log: Logger): void;
}

export function openStorage(
  config: Config,
  clock: Clock,
  reportBug: (where: string, err: unknown) => void,
): Storage {
  const database = openDatabase(config.dbPath, { synchronous: config.dbSynchronous });
  const status = new Listeners<StorageStatus>();
  const batch = createWriteBatch(sqliteTransactions(database.sqlite), {
    clock,
    onStatusChange: (s) => status.tell(s),
    onBug: (err) => reportBug("database write", err),
  });
  const stores = createStores(database.db, database.sqlite, { logKeep: config.logKeep, batch });
  const close = (log: Logger): void => {
    batch.stop();
    if (!batch.flush()) {
      log.log("error", "storage_unsaved_at_stop", {
        detail: "commits still fail; the writes since the last commit are lost with this stop",
        pendingWrites: batch.status.ok ? 0 : batch.status.pendingWrites,
      });
    }
    database.close();
  };
  return { database, stores, status, close };
}

/** The relay's identity upstream: made on its first start, kept in its database. */
export function loadMachineId(stores: Stores): string {
  const existing = stores.meta.get("machineId");
  if (existing) return existing;
  const id = `makima-relay-${randomUUID()}`;
  stores.meta.set("machineId", id);
  return id;
}
