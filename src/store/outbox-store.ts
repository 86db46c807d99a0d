/**
 * Durable FIFO of frames for the server. stats() is read on every append by the
 * caller's size policy, so frames/bytes live in memory: counted once at open,
 * then moved by exactly what each statement added or removed.
 */
import { and, asc, count, eq, gt, lte, sql, sum } from "drizzle-orm";
import type { OutboxEntry, OutboxStore } from "../core/ports.ts";
import type { RelayDb } from "./database.ts";
import { outbox } from "./schema.ts";
import type { Transactor } from "./transaction.ts";

/** Rows read per step while choosing what to drop; a drop usually needs only a few. */
const DROP_SCAN_BATCH = 256;

export interface OutboxStoreImpl extends OutboxStore {
  /** Recounts from the table, after a rollback undid rows the counters included. */
  reloadStats(): void;
}

const p = sql.placeholder;

export function createOutboxStore(db: RelayDb, transaction: Transactor): OutboxStoreImpl {
  const appendStmt = db
    .insert(outbox)
    .values({ frame: p("frame"), bytes: p("bytes"), critical: p("critical") })
    .prepare();
  const peekStmt = db.select().from(outbox).orderBy(asc(outbox.id)).limit(p("limit")).prepare();
  const statsStmt = db
    .select({ frames: count(), bytes: sum(outbox.bytes).mapWith(Number) })
    .from(outbox)
    .prepare();
  const statsThroughStmt = db
    .select({ frames: count(), bytes: sum(outbox.bytes).mapWith(Number) })
    .from(outbox)
    .where(lte(outbox.id, p("id")))
    .prepare();
  const deleteThroughStmt = db
    .delete(outbox)
    .where(lte(outbox.id, p("id")))
    .prepare();
  // Served by the (critical, id) index: oldest droppable rows after a cursor.
  const droppableStmt = db
    .select({ id: outbox.id, bytes: outbox.bytes })
    .from(outbox)
    .where(and(eq(outbox.critical, false), gt(outbox.id, p("after"))))
    .orderBy(asc(outbox.id))
    .limit(DROP_SCAN_BATCH)
    .prepare();
  const dropThroughStmt = db
    .delete(outbox)
    .where(and(eq(outbox.critical, false), lte(outbox.id, p("id"))))
    .prepare();

  const stats = { frames: 0, bytes: 0 };
  const reloadStats = () => {
    const row = statsStmt.get();
    stats.frames = row?.frames ?? 0;
    stats.bytes = row?.bytes ?? 0;
  };
  reloadStats();

  /** Picks the oldest non-critical rows whose sizes add up to `bytes`, then deletes them. */
  const dropOldest = (bytes: number) => {
    let frames = 0;
    let freed = 0;
    let lastId = 0;
    while (freed < bytes) {
      const batch = droppableStmt.all({ after: lastId });
      for (const row of batch) {
        frames++;
        freed += row.bytes;
        lastId = row.id;
        if (freed >= bytes) break;
      }
      if (batch.length < DROP_SCAN_BATCH) break;
    }
    if (frames > 0) dropThroughStmt.run({ id: lastId });
    return { frames, bytes: freed };
  };

  return {
    append: (frame, critical) => {
      const bytes = Buffer.byteLength(frame, "utf8");
      appendStmt.run({ frame, bytes, critical: critical ? 1 : 0 });
      stats.frames++;
      stats.bytes += bytes;
    },

    peek: (limit): OutboxEntry[] => peekStmt.all({ limit }),

    deleteThrough: (id, removed) => {
      if (removed) {
        deleteThroughStmt.run({ id });
        stats.frames -= removed.frames;
        stats.bytes -= removed.bytes;
        return;
      }
      const gone = transaction(() => {
        const row = statsThroughStmt.get({ id });
        deleteThroughStmt.run({ id });
        return row;
      });
      stats.frames -= gone?.frames ?? 0;
      stats.bytes -= gone?.bytes ?? 0;
    },

    dropOldestNonCritical: (bytes) => {
      if (!(bytes > 0)) return { frames: 0, bytes: 0 };
      const dropped = transaction(() => dropOldest(bytes));
      stats.frames -= dropped.frames;
      stats.bytes -= dropped.bytes;
      return dropped;
    },

    stats: () => ({ frames: stats.frames, bytes: stats.bytes }),

    reloadStats,
  };
}
