/**
 * Durable FIFO of frames for the server, within a byte budget. The size policy
 * runs where the rows are, as part of the append, so it always sees the rows
 * the database will hold. frames/bytes live in memory: counted at open and
 * after a rollback, then moved by exactly what each applied statement added
 * or removed, and by the rows marked sent (no longer counted, though their
 * delete waits for the next append: see OutboxStore.markSent).
 */
import { and, asc, gt, lte, sql } from "drizzle-orm";
import type { OutboxDrop, OutboxEntry, OutboxStore } from "../core/ports.ts";
import { OutboxTail } from "./outbox-tail.ts";
import { outbox } from "./schema.ts";
import type { StoreReader, StoreWriter, WriteTx } from "./store-writer.ts";

/** Rows read per step while choosing what to drop; a drop usually needs only a few. */
const DROP_SCAN_BATCH = 256;

const p = sql.placeholder;

/** What an append applied: the limit's drop, and the sent rows it deleted first (through id). */
interface Appended {
  drop: OutboxDrop | null;
  freed: number | null;
}

/** An outbox row as SQLite returns it (critical as 0/1). */
interface RawEntry {
  id: number;
  frame: string;
  bytes: number;
  critical: number | boolean;
}

interface RawStats {
  frames: number;
  bytes: number | null;
}

/**
 * The store is one object of small methods over statements prepared here once
 * (hence longer than a function should be); the size policy is in `append`.
 */
export function createOutboxStore(reader: StoreReader, writer: StoreWriter): OutboxStore {
  // Raw bun:sqlite statements where each frame pays (StoreReader.query, StoreWriter.prepare).
  const appendStmt = writer.prepare((_db, sqlite) =>
    sqlite.prepare<never, [number, string, number, number]>(
      "INSERT INTO outbox (id, frame, bytes, critical) VALUES (?1, ?2, ?3, ?4)",
    ),
  );
  const maxIdStmt = reader.query<{ max: number | null }, []>("SELECT MAX(id) AS max FROM outbox");
  const peekStmt = reader.query<RawEntry, [number, number]>(
    "SELECT id, frame, bytes, critical FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
  );
  const statsStmt = reader.query<RawStats, [number, number]>(
    "SELECT COUNT(*) AS frames, SUM(bytes) AS bytes FROM outbox WHERE id > ?1 AND id <= ?2",
  );
  const deleteThroughStmt = writer.prepare((_db, sqlite) =>
    sqlite.prepare<never, [number]>("DELETE FROM outbox WHERE id <= ?1"),
  );
  // Served by the partial index of droppable rows (schema.ts): oldest after a cursor.
  // `critical = 0` is written as a literal, not bound: SQLite uses a partial index
  // only for a condition it can see implies the index's own.
  const droppableStmt = reader
    .select({ id: outbox.id, bytes: outbox.bytes })
    .from(outbox)
    .where(and(sql`${outbox.critical} = 0`, gt(outbox.id, p("after"))))
    .orderBy(asc(outbox.id))
    .limit(DROP_SCAN_BATCH)
    .prepare();
  const dropThroughStmt = writer.prepare((db) =>
    db
      .delete(outbox)
      .where(and(sql`${outbox.critical} = 0`, lte(outbox.id, p("id"))))
      .prepare(),
  );

  /** Rows after `sentThrough`: what the outbox still holds for the server. */
  const stats = { frames: 0, bytes: 0 };
  /** Highest id marked sent: rows up to it are not counted, and go with the next commit. */
  let sentThrough = 0;
  /** Highest id whose delete is committed. */
  let deletedThrough = 0;
  /** Highest id whose delete is applied, in the open transaction or committed. */
  let deleteAppliedThrough = 0;
  /**
   * The next row's id. Only ever grows in a run: the drain's cursor (sentThrough)
   * stays past deleted rows, so an id below it must never be handed out again,
   * not even after a rollback or once the table is empty. Gaps are harmless.
   */
  let nextId = (maxIdStmt.get()?.max ?? 0) + 1;
  /** The newest committed rows in memory: the drain of a fresh append reads no SQL. */
  const tail = new OutboxTail(nextId);
  const reload = (): void => {
    const row = statsStmt.get(sentThrough, Number.MAX_SAFE_INTEGER);
    stats.frames = row?.frames ?? 0;
    stats.bytes = row?.bytes ?? 0;
    deleteAppliedThrough = deletedThrough;
    // Rows pushed by the rolled-back transaction are not in the table.
    tail.reset(nextId);
  };
  reload();
  writer.onRollback(reload);
  const deleteThrough = (tx: WriteTx, id: number): number => {
    tx(deleteThroughStmt).run(id);
    deleteAppliedThrough = Math.max(deleteAppliedThrough, id);
    return id;
  };
  const deleted = (id: number): void => {
    deletedThrough = Math.max(deletedThrough, id);
  };

  /** Deletes the oldest non-critical rows whose sizes add up to `bytes`. */
  const dropOldest = (tx: WriteTx, bytes: number): { frames: number; bytes: number } => {
    let frames = 0;
    let freed = 0;
    // Rows marked sent are not counted: their delete, ahead in this transaction, frees them.
    let lastId = sentThrough;
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
    if (frames > 0) {
      tx(dropThroughStmt).run({ id: lastId });
      tail.dropDroppableThrough(lastId);
    }
    stats.frames -= frames;
    stats.bytes -= freed;
    return { frames, bytes: freed };
  };

  const applyAppend = (
    tx: WriteTx,
    frame: string,
    critical: boolean,
    maxBytes: number,
  ): Appended => {
    // The sent rows' delete rides here: their pages are the ones this append
    // writes anyway, so it costs the commit no page of its own (markSent).
    const freed = deleteAppliedThrough < sentThrough ? deleteThrough(tx, sentThrough) : null;
    const bytes = Buffer.byteLength(frame, "utf8");
    const over = stats.bytes + bytes - maxBytes;
    const dropped = over > 0 ? dropOldest(tx, over) : { frames: 0, bytes: 0 };
    // Critical frames are never refused: the budget yields for them.
    const refused = !critical && stats.bytes + bytes > maxBytes;
    if (!refused) {
      const id = nextId++;
      tx(appendStmt).run(id, frame, bytes, critical ? 1 : 0);
      tail.push({ id, frame, bytes, critical });
      stats.frames++;
      stats.bytes += bytes;
    }
    const drop =
      dropped.frames > 0 || refused ? { ...dropped, refused: refused ? bytes : 0 } : null;
    return { drop, freed };
  };

  return {
    append: (frame, critical, maxBytes, stored) =>
      writer.write(
        (tx) => applyAppend(tx, frame, critical, maxBytes),
        ({ drop, freed }) => {
          if (freed !== null) deleted(freed);
          stored?.(drop);
        },
        // An append dropped as a bug (reported by the batch) is told like one
        // stored with nothing dropped: its caller must not wait for it forever
        // (UpstreamOutbox drains only once every append it made is confirmed),
        // and the count of frames it expected heals when a drain finds the
        // outbox empty.
        stored && (() => stored(null)),
      ),

    peekAfter: (afterId, limit): OutboxEntry[] => {
      const held = tail.peekAfter(afterId, limit);
      if (held !== null) return held;
      const rows = peekStmt.all(afterId, limit);
      // SQLite has no boolean: the column holds 0/1.
      for (const row of rows) (row as OutboxEntry).critical = row.critical === 1;
      return rows as unknown as OutboxEntry[];
    },

    markSent: (id) => {
      if (id <= sentThrough) return;
      // Every row up to `id` is committed (the drain read it): counted in the tail, or
      // else in the table as it is.
      const gone = tail.takeThrough(sentThrough, id) ?? statsStmt.get(sentThrough, id);
      stats.frames -= gone?.frames ?? 0;
      stats.bytes -= gone?.bytes ?? 0;
      sentThrough = id;
    },

    deleteSent: () => {
      if (deletedThrough >= sentThrough) return false;
      const id = sentThrough;
      writer.writeFreeing((tx) => deleteThrough(tx, id), deleted);
      return true;
    },

    stats: () => ({ frames: stats.frames, bytes: stats.bytes }),
  };
}
