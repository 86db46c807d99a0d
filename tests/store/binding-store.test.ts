import { describe, expect, test } from "bun:test";
import { BACKENDS, openBatched, openStores, rows, tempDir } from "./helpers.ts";

for (const backend of BACKENDS) {
  describe(`BindingStore (${backend.name})`, () => {
    test("binds, lists, rebinds a released machineId and releases", () => {
      using s = backend.open();
      const b = s.stores.bindings;
      b.bind({ machineId: "m1", fingerprint: "aa", boundAt: 10 });
      b.bind({ machineId: "m2", fingerprint: "bb", boundAt: 20 });
      b.release("m1");
      b.release("never-bound");
      b.bind({ machineId: "m1", fingerprint: "cc", boundAt: 30 });
      expect(b.all().sort((x, y) => x.machineId.localeCompare(y.machineId))).toEqual([
        { machineId: "m1", fingerprint: "cc", boundAt: 30 },
        { machineId: "m2", fingerprint: "bb", boundAt: 20 },
      ]);
    });
  });
}

test("bindings survive a reopen of the file", () => {
  using dir = tempDir();
  const file = dir.file("relay.db");
  {
    using db = openStores(file);
    db.stores.bindings.bind({ machineId: "m1", fingerprint: "aa", boundAt: 1 });
  }
  using db = openStores(file);
  expect(db.stores.bindings.all()).toEqual([{ machineId: "m1", fingerprint: "aa", boundAt: 1 }]);
});

test("behind a write batch: nothing is written before the commit, and a retried commit writes once", () => {
  using db = openBatched({ retryBaseMs: 10 });
  db.stores.bindings.bind({ machineId: "m1", fingerprint: "aa", boundAt: 1 });
  expect(db.stores.bindings.all()).toEqual([]);
  db.tx.failCommits = 1;
  db.endTurn();
  expect(db.batch.status.ok).toBe(false);
  db.clock.advance(10);
  expect(db.batch.status.ok).toBe(true);
  expect(
    rows(db.sqlite, "SELECT machine_id, key_fingerprint, bound_at FROM machine_bindings"),
  ).toEqual([{ machine_id: "m1", key_fingerprint: "aa", bound_at: 1 }]);
});
