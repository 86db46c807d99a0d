/**
 * Connection events, the newest `keep` of each kind kept: security events
 * (a takeover refused, a daemon replaced, a binding released) and all the
 * others, each with its own retention, so that noise never evicts the record
 * of an attack. Deleting on every insert would add a second write to each
 * one, so old rows are removed whenever a new id is a multiple of PRUNE_EVERY
 * (AUTOINCREMENT ids only grow, one at a time); list() never shows more than
 * `keep`, and only rows within each kind's newest `keep`, even between prunes.
 *
 * A repeated event (ConnectionLogOptions.replaces) replaces the row logged
 * before with the same key: one row with a count, moved to the top.
 */
import { and, desc, eq, lte, sql } from "drizzle-orm";
import type { ConnectionLogEntry, ConnectionLogStore } from "../core/ports.ts";
import { boundNullable, LOG_DETAILS_MAX_BYTES } from "../core/text-bound.ts";
import { reserveForSecurity } from "./log-listing.ts";
import { connectionLog } from "./schema.ts";
import type { StoreReader, StoreWriter, WriteTx } from "./store-writer.ts";

export const LOG_PRUNE_EVERY = 64;

const p = sql.placeholder;

/**
 * One object of small methods over statements prepared here once (hence
 * longer than a function should be): insert, the per-kind prune, list.
 */
export function createConnectionLogStore(
  reader: StoreReader,
  writer: StoreWriter,
  keep: number,
): ConnectionLogStore {
  if (!Number.isInteger(keep) || keep < 0) {
    throw new RangeError(`logKeep must be a non-negative integer, got ${keep}`);
  }
  const insertStmt = writer.prepare((db) =>
    db
      .insert(connectionLog)
      .values({
        event: p("event"),
        timestamp: p("timestamp"),
        details: p("details"),
        security: p("security"),
        aggregateKey: p("aggregateKey"),
      })
      .returning({ id: connectionLog.id })
      .prepare(),
  );
  const replaceStmt = writer.prepare((db) =>
    db
      .delete(connectionLog)
      .where(eq(connectionLog.aggregateKey, p("aggregateKey")))
      .prepare(),
  );
  const columns = {
    id: connectionLog.id,
    event: connectionLog.event,
    timestamp: connectionLog.timestamp,
    details: connectionLog.details,
    security: connectionLog.security,
  };
  const listStmt = reader
    .select(columns)
    .from(connectionLog)
    .orderBy(desc(connectionLog.id))
    .limit(p("limit"))
    .prepare();
  const listSecurityStmt = reader
    .select(columns)
    .from(connectionLog)
    .where(eq(connectionLog.security, 1))
    .orderBy(desc(connectionLog.id))
    .limit(p("limit"))
    .prepare();
  // The (keep + 1)-th newest row of a kind, if there is one: what prune() deletes from.
  const beyondKeepStmt = reader
    .select({ id: connectionLog.id })
    .from(connectionLog)
    .where(eq(connectionLog.security, p("security")))
    .orderBy(desc(connectionLog.id))
    .limit(1)
    .offset(p("keep"))
    .prepare();
  // Every row of a kind from its (keep + 1)-th newest down (all of them when keep is 0).
  const pruneStmt = writer.prepare((db) =>
    db
      .delete(connectionLog)
      .where(
        and(
          eq(connectionLog.security, p("security")),
          lte(
            connectionLog.id,
            sql`(SELECT ${connectionLog.id} FROM ${connectionLog} WHERE ${connectionLog.security} = ${p("security")} ORDER BY ${connectionLog.id} DESC LIMIT 1 OFFSET ${p("keep")})`,
          ),
        ),
      )
      .prepare(),
  );

  const prune = (tx: WriteTx) => {
    tx(pruneStmt).run({ security: 0, keep });
    tx(pruneStmt).run({ security: 1, keep });
  };
  // Catches up after a restart with a smaller `keep` than before: a write like any
  // other, committed with the turn's (list() never shows more than `keep` meanwhile).
  if ([0, 1].some((kind) => beyondKeepStmt.get({ security: kind, keep }) !== undefined)) {
    writer.write(prune);
  }

  return {
    insert: (event, timestamp, text, options) => {
      // Details can quote a peer (a close reason, a frame's type): a bounded copy.
      const details = boundNullable(text, LOG_DETAILS_MAX_BYTES);
      const security = options?.security ? 1 : 0;
      const aggregateKey = options?.replaces ?? null;
      writer.write((tx) => {
        if (aggregateKey !== null) tx(replaceStmt).run({ aggregateKey });
        const row = tx(insertStmt).get({ event, timestamp, details, security, aggregateKey });
        // Decided by the new row's id, not by a count kept in memory: a write batch
        // applies this again after a rolled-back commit, and the id (its
        // sqlite_sequence rolled back too) comes out the same, so the prune does too.
        if (row !== undefined && row.id % LOG_PRUNE_EVERY === 0) prune(tx);
      });
    },
    list: (limit): ConnectionLogEntry[] => {
      const n = Math.max(0, Math.min(Math.trunc(limit), keep));
      const toRow = (r: (typeof newest)[number]) => ({ ...r, security: r.security === 1 });
      const newest = listStmt.all({ limit: n });
      const security = listSecurityStmt.all({ limit: Math.floor(n / 2) });
      return reserveForSecurity(newest.map(toRow), security.map(toRow), n).map(
        ({ id, event, timestamp, details }) => ({ id, event, timestamp, details }),
      );
    },
  };
}
