/**
 * The newest committed outbox rows, in memory, so that the drain of what was
 * just appended (the usual case: a task result on an idle link, committed and
 * then sent) reads no SQL: neither the rows back nor their sizes when marked
 * sent. It holds every row from `from` on, in id order; anything older is
 * read from the table. Over its bound it forgets what it holds and starts
 * again at the next row, so a long outage's backlog is read from SQLite as
 * before, and the tail serves again once the drain has caught up with it.
 *
 * The owner (outbox-store.ts) keeps it exact: a row is pushed when its insert
 * is applied, a rolled-back transaction resets it, rows the size limit drops
 * leave it, and rows marked sent are taken out of it.
 */
import type { OutboxEntry } from "../core/ports.ts";

/** About two drain batches of task results, or 1 MiB of frames, whichever comes first. */
const MAX_ROWS = 1024;
const MAX_BYTES = 1024 * 1024;

export class OutboxTail {
  private rows: OutboxEntry[] = [];
  /** Index of the first row still held (rows before it were taken). */
  private head = 0;
  private bytes = 0;
  /** Every row of the table with an id >= `from` is in `rows` (from `head` on). */
  private from: number;

  constructor(nextId: number) {
    this.from = nextId;
  }

  /** A row just inserted, with the highest id so far. */
  push(entry: OutboxEntry): void {
    if (this.rows.length - this.head >= MAX_ROWS || this.bytes + entry.bytes > MAX_BYTES) {
      this.reset(entry.id + 1);
      return;
    }
    this.rows.push(entry);
    this.bytes += entry.bytes;
  }

  /** Forgets every row: from `nextId` on, rows are held again (after a rollback, an overflow). */
  reset(nextId: number): void {
    this.rows = [];
    this.head = 0;
    this.bytes = 0;
    this.from = nextId;
  }

  /** Rows with id > `afterId`, oldest first, or null when older rows may be missing. */
  peekAfter(afterId: number, limit: number): OutboxEntry[] | null {
    if (afterId + 1 < this.from) return null;
    let i = this.head;
    while (i < this.rows.length && (this.rows[i] as OutboxEntry).id <= afterId) i++;
    return this.rows.slice(i, i + limit);
  }

  /**
   * Takes out the rows with id <= `id` and tells the count and size of those
   * after `afterId` (rows up to it were taken before), or null when some of
   * them may not be held: the caller then counts them in the table.
   */
  takeThrough(afterId: number, id: number): { frames: number; bytes: number } | null {
    let frames = 0;
    let bytes = 0;
    while (this.head < this.rows.length && (this.rows[this.head] as OutboxEntry).id <= id) {
      const row = this.rows[this.head] as OutboxEntry;
      frames++;
      bytes += row.bytes;
      this.bytes -= row.bytes;
      this.head++;
    }
    this.compact();
    return afterId + 1 >= this.from ? { frames, bytes } : null;
  }

  /** Removes the non-critical rows with id <= `id` (what the size limit dropped). */
  dropDroppableThrough(id: number): void {
    const kept = this.rows.slice(this.head).filter((r) => r.critical || r.id > id);
    this.rows = kept;
    this.head = 0;
    this.bytes = kept.reduce((sum, r) => sum + r.bytes, 0);
  }

  /** Drops the taken prefix once it is most of the array (amortised O(1) per row). */
  private compact(): void {
    if (this.head === this.rows.length) {
      this.rows = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.rows.length) {
      this.rows = this.rows.slice(this.head);
      this.head = 0;
    }
  }
}
