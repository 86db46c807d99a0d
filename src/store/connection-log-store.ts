/**
 * Connection events, newest `keep` kept. Deleting on every insert would add a
 * second write to each one, so old rows are removed every PRUNE_EVERY inserts by
 * id range (AUTOINCREMENT ids only grow); list() never shows more than `keep`,
 * so readers see exactly the newest `keep` even between prunes.
 */
import { desc, lte, sql } from "drizzle-orm";
import type { ConnectionLogEntry, ConnectionLogStore } from "../core/ports.ts";
import type { RelayDb } from "./database.ts";
import { connectionLog } from "./schema.ts";
import type { Writer } from "./write-batch.ts";

export const LOG_PRUNE_EVERY = 64;

const p = sql.placeholder;

export function createConnectionLogStore(
  db: RelayDb,
  keep: number,
  writer: Writer,
): ConnectionLogStore {
  if (!Number.isInteger(keep) || keep < 0) {
    throw new RangeError(`logKeep must be a non-negative integer, got ${keep}`);
  }
  const insertStmt = db
    .insert(connectionLog)
    .values({ event: p("event"), timestamp: p("timestamp"), details: p("details") })
    .returning({ id: connectionLog.id })
    .prepare();
  const listStmt = db
    .select()
    .from(connectionLog)
    .orderBy(desc(connectionLog.id))
    .limit(p("limit"))
    .prepare();
  const pruneStmt = db
    .delete(connectionLog)
    .where(lte(connectionLog.id, p("id")))
    .prepare();
  const maxIdStmt = db
    .select({ id: sql<number | null>`MAX(${connectionLog.id})` })
    .from(connectionLog)
    .prepare();

  const pruneBelow = (lastId: number) => pruneStmt.run({ id: lastId - keep });

  // Catches up after a restart with a smaller `keep` than before.
  const maxId = maxIdStmt.get()?.id;
  if (maxId != null) pruneBelow(maxId);

  let sincePrune = 0;
  return {
    insert: (event, timestamp, details) =>
      writer.write(() => {
        const row = insertStmt.get({ event, timestamp, details });
        if (++sincePrune >= LOG_PRUNE_EVERY && row !== undefined) {
          sincePrune = 0;
          pruneBelow(row.id);
        }
      }),
    list: (limit): ConnectionLogEntry[] =>
      listStmt.all({ limit: Math.max(0, Math.min(Math.trunc(limit), keep)) }),
  };
}
