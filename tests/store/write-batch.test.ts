/**
 * The write batch (src/store/write-batch.ts) over the real SQLite stores:
 * group commit at the end of the turn, afterCommit ordering, and what a failed
 * commit does (rollback, writes kept, status, retry with backoff). Turns are
 * ended by hand and time is a ManualClock: no sleeps. The only real waiting is
 * SQLite's own busy_timeout (250 ms) in the locked-database test.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/core/manual-clock.ts";
import type { OutboxDrop, StorageStatus } from "../../src/core/ports.ts";
import { createMemoryStores } from "../../src/store/memory-stores.ts";
import { createImmediateWriter } from "../../src/store/store-writer.ts";
import { createWriteBatch, storageErrorCode } from "../../src/store/write-batch.ts";
import {
  type Batched,
  NO_LIMIT,
  openBatched,
  pending,
  row,
  rows,
  storageError,
  tempDir,
} from "./helpers.ts";

const outboxFrames = (db: { sqlite: Database }) =>
  rows<{ frame: string }>(db.sqlite, "SELECT frame FROM outbox ORDER BY id").map((r) => r.frame);
const outboxTable = (db: { sqlite: Database }) =>
  row<{ frames: number; bytes: number }>(
    db.sqlite,
    "SELECT COUNT(*) AS frames, COALESCE(SUM(bytes), 0) AS bytes FROM outbox",
  );
/** The table's rows after `id`: what the outbox holds once rows up to `id` are marked sent. */
const outboxTableAfter = (db: { sqlite: Database }, id: number) =>
  row<{ frames: number; bytes: number }>(
    db.sqlite,
    `SELECT COUNT(*) AS frames, COALESCE(SUM(bytes), 0) AS bytes FROM outbox WHERE id > ${id}`,
  );
const logEvents = (db: { sqlite: Database }) =>
  rows<{ event: string }>(db.sqlite, "SELECT event FROM connection_log ORDER BY id").map(
    (r) => r.event,
  );
const failing = (s: StorageStatus) => {
  if (s.ok) throw new Error("expected a failing status");
  return s;
};

describe("WriteBatch: group commit", () => {
  test("writes are applied only at the flush, in order, in one transaction", () => {
    using db = openBatched();
    const applied: string[] = [];
    db.batch.write(() => applied.push("first"));
    db.stores.outbox.append("a", false, NO_LIMIT);
    db.stores.meta.set("k", "1");
    db.stores.connectionLog.insert("e1", 1, null);
    db.batch.write(() => applied.push("second"));
    db.stores.outbox.append("b", true, NO_LIMIT);
    db.stores.meta.set("k", "2");
    db.stores.connectionLog.insert("e2", 2, null);
    db.stores.outbox.append("c", false, NO_LIMIT);

    // Nothing has touched the database yet; one flush is scheduled for the whole turn.
    expect(applied).toEqual([]);
    expect([outboxFrames(db), logEvents(db), db.stores.meta.get("k")]).toEqual([[], [], null]);
    expect(db.stores.outbox.stats()).toEqual({ frames: 0, bytes: 0 });
    expect(db.scheduled).toBe(1);
    expect(db.tx.commits).toBe(0);

    db.endTurn();
    expect(applied).toEqual(["first", "second"]);
    expect(outboxFrames(db)).toEqual(["a", "b", "c"]);
    expect(logEvents(db)).toEqual(["e1", "e2"]);
    // The later set wins: the writes were applied in the order they were made.
    expect(db.stores.meta.get("k")).toBe("2");
    expect(db.tx.commits).toBe(1);
    expect(db.sqlite.inTransaction).toBe(false);
    expect(db.statuses).toEqual([]);

    // The next turn's writes get their own flush.
    db.stores.outbox.append("d", false, NO_LIMIT);
    expect(db.scheduled).toBe(1);
    db.endTurn();
    expect(outboxFrames(db)).toEqual(["a", "b", "c", "d"]);
    expect(db.tx.commits).toBe(2);
  });

  test("afterCommit runs at once when nothing is queued, else after the COMMIT, in call order", () => {
    using db = openBatched();
    const events: string[] = [];
    db.stores.afterCommit(() => events.push("nothing queued"));
    expect(events).toEqual(["nothing queued"]);

    db.stores.outbox.append("a", true, NO_LIMIT, () => events.push("stored a"));
    db.stores.afterCommit(() => {
      // Runs once the write before it is committed, outside any transaction.
      events.push(`after a: ${outboxFrames(db).join(",")} inTx=${db.sqlite.inTransaction}`);
    });
    db.stores.outbox.append("b", true, NO_LIMIT, () => events.push("stored b"));
    db.stores.afterCommit(() => events.push("after b"));
    db.stores.afterCommit(() => events.push("after b, second"));
    expect(events).toEqual(["nothing queued"]);

    db.endTurn();
    expect(events).toEqual([
      "nothing queued",
      // Writes hear their results first, then what waited for the commit, in call order.
      "stored a",
      "stored b",
      "after a: a,b inTx=false",
      "after b",
      "after b, second",
    ]);
    events.length = 0;
    db.stores.afterCommit(() => events.push("queue empty again"));
    expect(events).toEqual(["queue empty again"]);
  });

  test("what an afterCommit callback writes goes to the next flush, and its own afterCommit waits for it", () => {
    using db = openBatched();
    const events: string[] = [];
    db.stores.meta.set("k", "1");
    db.stores.afterCommit(() => {
      events.push("first commit");
      db.stores.meta.set("k", "2");
      db.stores.afterCommit(() => events.push(`second commit: k=${db.stores.meta.get("k")}`));
    });
    db.endTurn();
    expect(events).toEqual(["first commit"]);
    expect(db.scheduled).toBe(1);
    db.endTurn();
    expect(events).toEqual(["first commit", "second commit: k=2"]);
  });

  test("an afterCommit made while the commit's callbacks run waits behind the ones already waiting", () => {
    using db = openBatched();
    const events: string[] = [];
    db.batch.write(
      () => 1,
      () => {
        events.push("committed");
        db.stores.afterCommit(() => events.push("asked by committed"));
      },
    );
    db.stores.afterCommit(() => {
      events.push("waiting 1");
      db.stores.afterCommit(() => events.push("asked by waiting 1"));
    });
    db.stores.afterCommit(() => events.push("waiting 2"));
    db.endTurn();
    expect(events).toEqual([
      "committed",
      "waiting 1",
      "waiting 2",
      "asked by committed",
      "asked by waiting 1",
    ]);
    // Nothing is left waiting: the next one runs at once again.
    db.stores.afterCommit(() => events.push("later"));
    expect(events.at(-1)).toBe("later");
  });

  test("memory stores behind a batch also wait for its flush", () => {
    const turn: Array<() => void> = [];
    const noTransaction = { begin() {}, commit() {}, rollback() {} };
    const batch = createWriteBatch(noTransaction, {
      clock: new ManualClock(),
      schedule: (fn) => turn.push(fn),
    });
    const stores = createMemoryStores(batch);
    const events: string[] = [];
    stores.tasks.savePending(pending("a", 1));
    stores.outbox.append("f", true, NO_LIMIT, (d) => events.push(`stored ${d}`));
    stores.afterCommit(() => events.push("after"));
    expect([stores.tasks.get("a"), stores.outbox.stats().frames, events]).toEqual([null, 0, []]);
    for (const fn of turn.splice(0)) fn();
    expect([stores.tasks.get("a")?.status, stores.outbox.stats().frames]).toEqual(["pending", 1]);
    expect(events).toEqual(["stored null", "after"]);
  });
});

describe("WriteBatch: a failed COMMIT", () => {
  test("is rolled back, keeps the writes and retries with a growing, capped backoff until one commits", () => {
    using db = openBatched({ retryBaseMs: 100, retryMaxMs: 400 });
    const { stores, clock, tx, batch } = db;
    stores.outbox.append("c0", true, NO_LIMIT);
    stores.meta.set("k", "committed");
    db.endTurn();

    const events: string[] = [];
    const applies: number[] = [];
    const stored = (tag: string) => (d: OutboxDrop | null) => events.push(`stored ${tag} ${d}`);
    stores.outbox.append("f1", false, NO_LIMIT, stored("f1"));
    stores.tasks.savePending(pending("t1", 1));
    stores.connectionLog.insert("e1", 1, null);
    batch.write(
      () => {
        applies.push(applies.length + 1);
        return "result";
      },
      (r) => events.push(`committed ${r}`),
    );
    stores.afterCommit(() => events.push("after 1"));
    stores.outbox.append("f2", true, NO_LIMIT, stored("f2"));
    stores.meta.set("k", "new");
    stores.afterCommit(() => events.push("after 2"));
    const queued = 6;

    const start = clock.now();
    tx.failCommits = 4;
    expect(db.scheduled).toBe(1);
    db.endTurn();

    // The database is at its last committed state, the transaction is closed.
    expect(db.sqlite.inTransaction).toBe(false);
    expect(outboxFrames(db)).toEqual(["c0"]);
    expect([stores.meta.get("k"), stores.tasks.get("t1"), logEvents(db)]).toEqual([
      "committed",
      null,
      [],
    ]);
    expect(stores.outbox.stats()).toEqual(outboxTable(db));
    // Nothing that waited for those writes ran, no write heard of a result.
    expect(events).toEqual([]);
    const first = {
      ok: false,
      code: "SQLITE_FULL",
      error: "database or disk is full",
      since: start,
      attempts: 1,
      pendingWrites: queued,
    };
    expect(db.statuses).toEqual([first]);
    expect(batch.status).toEqual(first);
    expect(stores.storage()).toEqual(first);

    // While failing, new writes join the queue; the retry timer, not the turn, flushes them.
    stores.outbox.append("f3", false, NO_LIMIT, stored("f3"));
    stores.afterCommit(() => events.push("after 3"));
    expect(db.scheduled).toBe(0);
    expect(failing(batch.status).pendingWrites).toBe(queued + 1);
    expect(events).toEqual([]);

    // Retries at +100, +200, +400, then +400 again (capped), each one a COMMIT tried.
    const delays = [100, 200, 400, 400];
    for (const [i, delay] of delays.entries()) {
      const commits = tx.commits;
      clock.advance(delay - 1);
      expect(tx.commits).toBe(commits);
      clock.advance(1);
      expect(tx.commits).toBe(commits + 1);
      if (i < delays.length - 1) {
        expect(db.statuses.at(-1)).toEqual({
          ...first,
          since: start,
          attempts: i + 2,
          pendingWrites: queued + 1,
        });
        expect(outboxFrames(db)).toEqual(["c0"]);
        expect(events).toEqual([]);
      }
    }

    // The fifth COMMIT succeeded: every kept write applied once, in order.
    expect(db.statuses).toHaveLength(5);
    expect(db.statuses.at(-1)).toEqual({ ok: true });
    expect(batch.status).toEqual({ ok: true });
    expect(outboxFrames(db)).toEqual(["c0", "f1", "f2", "f3"]);
    expect(stores.outbox.stats()).toEqual(outboxTable(db));
    expect(stores.meta.get("k")).toBe("new");
    expect(stores.tasks.get("t1")).toMatchObject({ status: "pending", attempts: 1, seq: 1 });
    expect(stores.tasks.totalReceived()).toBe(1);
    expect(logEvents(db)).toEqual(["e1"]);
    // The raw operation ran once per attempt; only the committed run reported.
    expect(applies).toEqual([1, 2, 3, 4, 5]);
    expect(events).toEqual([
      "stored f1 null",
      "committed result",
      "stored f2 null",
      "stored f3 null",
      "after 1",
      "after 2",
      "after 3",
    ]);
    expect(clock.timerCount).toBe(0);

    // Healthy again: back to one flush per turn, afterCommit at once when nothing waits.
    stores.meta.set("k", "later");
    expect(db.scheduled).toBe(1);
    db.endTurn();
    expect(stores.meta.get("k")).toBe("later");
    const ran: string[] = [];
    stores.afterCommit(() => ran.push("now"));
    expect(ran).toEqual(["now"]);
  });

  test("the backoff starts over after a success", () => {
    using db = openBatched({ retryBaseMs: 100, retryMaxMs: 1000 });
    db.tx.failCommits = 2;
    db.stores.meta.set("k", "1");
    db.endTurn();
    db.clock.advance(100);
    db.clock.advance(200);
    expect(db.batch.status.ok).toBe(true);
    db.tx.failCommits = 1;
    db.stores.meta.set("k", "2");
    db.endTurn();
    expect(failing(db.batch.status).attempts).toBe(1);
    const commits = db.tx.commits;
    db.clock.advance(100);
    expect(db.tx.commits).toBe(commits + 1);
    expect(db.stores.meta.get("k")).toBe("2");
  });

  test("the write's `committed` hears the result of the run that committed, once", () => {
    using db = openBatched({ retryBaseMs: 10 });
    const { tasks } = db.stores;
    for (const id of ["a", "b", "c"]) tasks.savePending(pending(id, 1));
    db.endTurn();
    for (const id of ["a", "b", "c"]) tasks.markEnded(id, "completed", 2, null);
    const pruned: number[] = [];
    tasks.prune(1, undefined, (n) => pruned.push(n));
    db.tx.failCommits = 2;
    db.endTurn();
    db.clock.advance(10);
    expect(pruned).toEqual([]);
    expect(tasks.get("a")?.status).toBe("pending");
    db.clock.advance(20);
    expect(pruned).toEqual([2]);
    expect(tasks.countByStatus()).toMatchObject({ completed: 1, pending: 0 });
  });

  test("store caches (outbox stats, task sequence, ended-row count) equal the database after rollback and retry", () => {
    using db = openBatched({ retryBaseMs: 10 });
    const { tasks, outbox } = db.stores;
    for (let i = 0; i < 6; i++) tasks.savePending(pending(`t${i}`, i));
    for (let i = 0; i < 4; i++) tasks.markEnded(`t${i}`, "completed", 10 + i, null);
    for (let i = 0; i < 20; i++) outbox.append(`frame-${i}`, i % 4 === 0, 200);
    db.endTurn();
    const before = outboxTable(db);
    expect(outbox.stats()).toEqual(before);

    // One turn that moves every cache: drops and appends, a delete, new tasks,
    // ended tasks, and a new attempt of an ended one.
    for (let i = 20; i < 40; i++) outbox.append(`frame-${i}`, i % 4 === 0, 200);
    const firstId = outbox.peekAfter(0, 3).at(-1)?.id ?? 0;
    outbox.markSent(firstId);
    tasks.savePending(pending("n1", 20));
    tasks.savePending(pending("n2", 21));
    tasks.markEnded("t4", "failed", 22, "x");
    tasks.markEnded("t5", "lost", 23, null);
    tasks.savePending(pending("t0", 24));
    db.tx.failCommits = 1;
    db.endTurn();

    // Rolled back: the caches were reloaded from the committed state (the
    // rows marked sent stay sent: not counted, though the table still holds them).
    expect(outboxTable(db)).toEqual(before);
    expect(outbox.stats()).toEqual(outboxTableAfter(db, firstId));
    expect(outbox.stats().frames).toBe(before.frames - 3);

    db.clock.advance(10);
    expect(db.batch.status.ok).toBe(true);
    expect(outbox.stats()).toEqual(outboxTable(db));
    expect(outbox.stats().bytes).toBeLessThanOrEqual(200);

    // The sequence continues from the table's, with no gap left by the failed attempt.
    const { maxSeq } = row<{ maxSeq: number }>(db.sqlite, "SELECT MAX(seq) AS maxSeq FROM tasks");
    expect(maxSeq).toBe(6 + 3);
    tasks.savePending(pending("probe", 30));
    db.endTurn();
    expect(tasks.get("probe")?.seq).toBe(maxSeq + 1);
    expect(tasks.loadActive().map((t) => t.taskId)).toEqual(["n1", "n2", "t0", "probe"]);

    // The ended-row count decides how many rows prune() takes: keep all but one, and
    // exactly one goes (a count off by the rolled-back attempt would take more or none).
    const { ended } = row<{ ended: number }>(
      db.sqlite,
      "SELECT COUNT(*) AS ended FROM tasks WHERE status NOT IN ('pending', 'dispatched')",
    );
    expect(ended).toBe(5);
    const pruned: number[] = [];
    tasks.prune(ended - 1, undefined, (n) => pruned.push(n));
    db.endTurn();
    expect(pruned).toEqual([1]);
  });

  test("a write that throws a plain Error is a bug: dropped and reported, the rest commits", () => {
    using db = openBatched();
    const events: string[] = [];
    const bug = new Error("bug in an operation");
    db.stores.outbox.append("before", false, NO_LIMIT, () => events.push("stored before"));
    db.batch.write(
      () => {
        // What it wrote before throwing is undone with it.
        db.sqlite.run("INSERT INTO meta (key, value) VALUES ('half', 'done')");
        throw bug;
      },
      () => events.push("committed the bug"),
    );
    db.stores.meta.set("k", "after");
    // SQLITE_CONSTRAINT is not a storage failure: a command for an unknown task is a bug too.
    db.stores.tasks.holdCommand("unknown", "x");
    db.stores.afterCommit(() => events.push("after"));
    db.endTurn();

    expect(db.bugs).toHaveLength(2);
    expect(db.bugs[0]).toBe(bug);
    expect(String(db.bugs[1])).toMatch(/FOREIGN KEY/);
    expect(storageErrorCode(db.bugs[1])).toBeNull();
    expect(outboxFrames(db)).toEqual(["before"]);
    expect([db.stores.meta.get("half"), db.stores.meta.get("k")]).toEqual([null, "after"]);
    expect(row(db.sqlite, "SELECT COUNT(*) AS n FROM held_commands")).toEqual({ n: 0 });
    expect(events).toEqual(["stored before", "after"]);
    // Never a storage problem: no status change, one COMMIT.
    expect(db.statuses).toEqual([]);
    expect(db.tx.commits).toBe(1);
  });

  test("a write dropped as a bug is told `dropped` after the commit, in its place, never `committed`", () => {
    using db = openBatched({ retryBaseMs: 10 });
    const events: string[] = [];
    const bug = new TypeError("bug");
    db.batch.write(
      () => "a",
      (r) => events.push(`committed ${r}`),
      () => events.push("dropped a"),
    );
    db.batch.write(
      () => {
        throw bug;
      },
      () => events.push("committed bug"),
      (err) => events.push(`dropped ${err === bug ? "bug" : String(err)}`),
    );
    db.batch.write(
      () => "c",
      (r) => events.push(`committed ${r}`),
    );
    // The commit fails for the medium: the bug is already known, nothing is told yet.
    db.tx.failCommits = 1;
    db.endTurn();
    expect(events).toEqual([]);
    expect(db.bugs).toEqual([bug]);
    // The dropped write no longer counts as waiting for the disk.
    expect(failing(db.batch.status).pendingWrites).toBe(2);
    db.clock.advance(10);
    expect(events).toEqual(["committed a", "dropped bug", "committed c"]);
    // Reported once, skipped by the retry.
    expect(db.bugs).toEqual([bug]);
  });

  test("an outbox append dropped as a bug is told like one stored, so nobody waits for it", () => {
    using db = openBatched();
    const told: (OutboxDrop | null)[] = [];
    db.stores.outbox.append(123 as unknown as string, true, NO_LIMIT, (d) => told.push(d));
    db.stores.outbox.append("fine", true, NO_LIMIT, (d) => told.push(d));
    db.endTurn();
    expect(db.bugs).toHaveLength(1);
    expect(told).toEqual([null, null]);
    expect(outboxFrames(db)).toEqual(["fine"]);
    expect(db.stores.outbox.stats()).toEqual(outboxTable(db));
  });

  test("without a batch, a write that throws is told `dropped` before its error reaches the caller", () => {
    using db = openBatched();
    const writer = createImmediateWriter(db.sqlite);
    const events: string[] = [];
    const bug = new Error("bug");
    expect(() =>
      writer.write(
        () => {
          throw bug;
        },
        () => events.push("committed"),
        (err) => events.push(err === bug ? "dropped" : "dropped something else"),
      ),
    ).toThrow(bug);
    expect(events).toEqual(["dropped"]);
  });

  test("stop() ends the retries; the writes stay queued and a later flush commits them", () => {
    using db = openBatched({ retryBaseMs: 10 });
    db.stores.meta.set("k", "v");
    db.tx.failCommits = 1;
    db.endTurn();
    db.batch.stop();
    expect(db.clock.timerCount).toBe(0);
    db.clock.advance(10_000);
    expect(db.stores.meta.get("k")).toBeNull();
    expect(failing(db.batch.status).pendingWrites).toBe(1);
    // flush() (at shutdown) says whether anything is left uncommitted.
    db.tx.failCommits = 1;
    expect(db.batch.flush()).toBe(false);
    expect(failing(db.batch.status).attempts).toBe(2);
    expect(db.clock.timerCount).toBe(0);
    expect(db.batch.flush()).toBe(true);
    expect(db.batch.status).toEqual({ ok: true });
    expect(db.stores.meta.get("k")).toBe("v");
  });

  test("storage codes: SQLite's failures of the medium, never a constraint or a plain Error", () => {
    for (const code of [
      "SQLITE_FULL",
      "SQLITE_IOERR",
      "SQLITE_IOERR_WRITE",
      "SQLITE_BUSY",
      "SQLITE_BUSY_SNAPSHOT",
      "SQLITE_READONLY",
      "SQLITE_READONLY_DBMOVED",
      "SQLITE_LOCKED",
    ]) {
      expect(storageErrorCode(storageError(code))).toBe(code);
    }
    for (const err of [
      storageError("SQLITE_CONSTRAINT_FOREIGNKEY"),
      storageError("SQLITE_ERROR"),
      storageError("SQLITE_FULLX"),
      new Error("plain"),
      "a string",
      null,
    ]) {
      expect(storageErrorCode(err)).toBeNull();
    }
  });
});

// ---- real failures of the medium -------------------------------------------------

/** Appends `n` frames of about 1 KB through the batch and ends the turn. */
function appendTurn(db: Batched, sent: string[], committed: string[], n: number): void {
  for (let i = 0; i < n; i++) {
    const frame = `frame-${sent.length}-${"x".repeat(1000)}`;
    sent.push(frame);
    db.stores.outbox.append(frame, true, NO_LIMIT, () => committed.push(frame));
  }
  db.endTurn();
}

describe("WriteBatch on a full disk (1 MB tmpfs)", () => {
  const mountPoint = mkdtempSync(join(tmpdir(), "relay-full-disk-"));
  let mountError: string | null = null;

  beforeAll(() => {
    const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint], {
      encoding: "utf8",
    });
    if (r.status !== 0) {
      mountError = `mount -t tmpfs -o size=1m tmpfs ${mountPoint} failed (status ${r.status}): ${
        r.stderr || r.error?.message || "no output"
      }`;
    }
  });

  afterAll(() => {
    if (mountError === null && spawnSync("umount", [mountPoint]).status !== 0) {
      // Still busy (a failed test left a file open): detach it anyway.
      spawnSync("umount", ["-l", mountPoint]);
    }
    rmSync(mountPoint, { recursive: true, force: true });
  });

  test("commits fail with SQLITE_FULL, nothing committed is lost, and once space is freed the retry commits everything in order", () => {
    if (mountError !== null) {
      throw new Error(`this test needs a real full disk (it runs as root): ${mountError}`);
    }
    const filler = join(mountPoint, "filler");
    writeFileSync(filler, Buffer.alloc(512 * 1024, 1));
    const file = join(mountPoint, "relay.db");
    using db = openBatched({ path: file, retryBaseMs: 50, retryMaxMs: 200 });
    // Disposed before `db`: should an assertion fail while the disk is full, closing
    // (which checkpoints the WAL) still finds room.
    using _room = { [Symbol.dispose]: () => rmSync(filler, { force: true }) };

    const sent: string[] = [];
    const committed: string[] = [];
    for (let turn = 0; turn < 500 && db.batch.status.ok; turn++) appendTurn(db, sent, committed, 8);
    const status = failing(db.batch.status);
    expect(status.code).toBe("SQLITE_FULL");
    expect(status.attempts).toBe(1);
    expect(db.statuses).toEqual([status]);
    expect(committed.length).toBeGreaterThan(0);
    const pendingWrites = sent.length - committed.length;
    expect(status.pendingWrites).toBe(pendingWrites);
    expect(pendingWrites).toBe(8);

    // Nothing committed is lost, nothing uncommitted is visible, to this connection or another.
    expect(db.sqlite.inTransaction).toBe(false);
    expect(outboxFrames(db)).toEqual(committed);
    expect(db.stores.outbox.stats()).toEqual(outboxTable(db));
    {
      using reader = new Database(file, { readonly: true });
      expect(outboxFrames({ sqlite: reader })).toEqual(committed);
    }

    // Still full: the retry fails too, and more writes wait behind the kept ones.
    db.clock.advance(50);
    expect(failing(db.batch.status).attempts).toBe(2);
    appendTurn(db, sent, committed, 3);
    expect(failing(db.batch.status).pendingWrites).toBe(pendingWrites + 3);
    expect(outboxFrames(db)).toEqual(committed);

    rmSync(filler);
    db.clock.advance(100);
    expect(db.batch.status).toEqual({ ok: true });
    expect(db.statuses.at(-1)).toEqual({ ok: true });
    expect(committed).toEqual(sent);
    expect(outboxFrames(db)).toEqual(sent);
    expect(db.stores.outbox.stats()).toEqual(outboxTable(db));
  });
});

describe("WriteBatch on a locked or read-only database", () => {
  test("another connection holding the write lock: SQLITE_BUSY after busy_timeout, then the retry commits", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    using db = openBatched({ path: file, retryBaseMs: 50 });
    db.stores.outbox.append("before the lock", true, NO_LIMIT);
    db.endTurn();

    using other = new Database(file);
    other.run("BEGIN IMMEDIATE");
    db.stores.outbox.append("while locked", true, NO_LIMIT);
    db.stores.meta.set("k", "v");
    const afterCommit: string[] = [];
    db.stores.afterCommit(() => afterCommit.push("ran"));
    db.endTurn();
    expect(db.batch.status).toMatchObject({ ok: false, code: "SQLITE_BUSY", pendingWrites: 2 });
    expect(failing(db.batch.status).error).toMatch(/locked/);
    expect(outboxFrames(db)).toEqual(["before the lock"]);
    expect(afterCommit).toEqual([]);

    other.run("COMMIT");
    db.clock.advance(50);
    expect(db.batch.status).toEqual({ ok: true });
    expect(outboxFrames(db)).toEqual(["before the lock", "while locked"]);
    expect(db.stores.meta.get("k")).toBe("v");
    expect(afterCommit).toEqual(["ran"]);
    expect(db.statuses.map((s) => s.ok)).toEqual([false, true]);
  });

  test("a read-only connection (PRAGMA query_only): SQLITE_READONLY, then writes resume once it is writable", () => {
    using db = openBatched({ retryBaseMs: 50 });
    db.stores.tasks.savePending(pending("a", 1));
    db.endTurn();

    db.sqlite.run("PRAGMA query_only = ON");
    db.stores.tasks.markDispatched("a", "d", "m", 2);
    db.stores.outbox.append("f", true, NO_LIMIT);
    db.endTurn();
    expect(db.batch.status).toMatchObject({
      ok: false,
      code: "SQLITE_READONLY",
      error: "attempt to write a readonly database",
      attempts: 1,
      pendingWrites: 2,
    });
    db.clock.advance(50);
    expect(failing(db.batch.status).attempts).toBe(2);
    expect(db.stores.tasks.get("a")?.status).toBe("pending");

    db.sqlite.run("PRAGMA query_only = OFF");
    db.clock.advance(100);
    expect(db.batch.status).toEqual({ ok: true });
    expect(db.stores.tasks.get("a")).toMatchObject({ status: "dispatched", dispatchedTo: "d" });
    expect(outboxFrames(db)).toEqual(["f"]);
    expect(db.statuses.map((s) => s.ok)).toEqual([false, false, true]);
  });
});

describe("WriteBatch: space-freeing writes", () => {
  test("deletes of sent rows apply ahead of the turn's appends: a size limit never drops a sent row", () => {
    using db = openBatched();
    const frame = (n: number) => `${n}`.padEnd(100, ".");
    for (const n of [1, 2, 3]) db.stores.outbox.append(frame(n), false, 300);
    db.endTurn();
    // Rows 1 and 2 are marked sent after an append that needs room was queued: it deletes them first.
    const drops: (OutboxDrop | null)[] = [];
    db.stores.outbox.append(frame(4), false, 300, (d) => drops.push(d));
    db.stores.outbox.markSent(2);
    db.endTurn();
    // Applied in queue order the append would have dropped row 1, already sent.
    expect({ drops, frames: outboxFrames(db) }).toEqual({
      drops: [null],
      frames: [frame(3), frame(4)],
    });
  });

  test("after a full disk, a retry commits the deletes on their own first, even if the rest still fails", () => {
    using db = openBatched();
    for (const n of [1, 2]) db.stores.outbox.append(`${n}`, true, NO_LIMIT);
    db.endTurn();
    db.stores.outbox.append("3", true, NO_LIMIT);
    db.tx.failCommits = 1;
    db.endTurn();
    expect(db.batch.status.ok).toBe(false);
    // Rows 1 and 2 were sent meanwhile (committed rows may go while later writes wait).
    db.stores.outbox.markSent(2);
    // Their delete waits for the next append, or the outbox's fallback timer: this.
    expect(db.stores.outbox.deleteSent()).toBe(true);
    // The retry: the first commit (the delete alone) succeeds, the next one (the append) fails.
    const real = db.tx.commit;
    let commits = 0;
    db.tx.commit = () => {
      commits += 1;
      if (commits === 2) throw storageError("SQLITE_FULL");
      real();
    };
    db.clock.advance(50);
    expect({ ok: db.batch.status.ok, frames: outboxFrames(db) }).toEqual({ ok: false, frames: [] });
    db.tx.commit = real;
    db.clock.advance(100);
    expect({ ok: db.batch.status.ok, frames: outboxFrames(db) }).toEqual({
      ok: true,
      frames: ["3"],
    });
  });
});
