/**
 * Connection events, newest `keep` kept. Deleting on every insert would add a
 * second write to each one, so old rows are removed by id range whenever a new
 * id is a multiple of PRUNE_EVERY (AUTOINCREMENT ids only grow, one at a time);
 * list() never shows more than `keep`, so readers see exactly the newest `keep`
 * even between prunes.
 */
import { desc, lte, sql } from "drizzle-orm";
import type { ConnectionLogEntry, ConnectionLogStore } from "../core/ports.ts";
import { boundNullable, LOG_DETAILS_MAX_BYTES } from "../core/text-bound.ts";
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

  return {
    insert: (event, timestamp, text) => {
      // Details can quote a peer (a close reason, a frame's type): a bounded copy.
      const details = boundNullable(text, LOG_DETAILS_MAX_BYTES);
      writer.write(() => {
        const row = insertStmt.get({ event, timestamp, details });
        // Decided by the new row's id, not by a count kept in memory: a write batch
        // applies this again after a rolled-back commit, and the id (its
        // sqlite_sequence rolled back too) comes out the same, so the prune does too.
        if (row !== undefined && row.id % LOG_PRUNE_EVERY === 0) pruneBelow(row.id);
      });
    },
    list: (limit): ConnectionLogEntry[] =>
      listStmt.all({ limit: Math.max(0, Math.min(Math.trunc(limit), keep)) }),
  };
}
