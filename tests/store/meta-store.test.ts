import { describe, expect, test } from "bun:test";
import { BACKENDS, openStores, tempDir } from "./helpers.ts";

for (const backend of BACKENDS) {
  describe(`MetaStore (${backend.name})`, () => {
    test("get, set and overwrite", () => {
      using s = backend.open();
      const { meta } = s.stores;
      expect(meta.get("machineId")).toBeNull();
      meta.set("machineId", "m-1");
      meta.set("machineId", "m-2");
      meta.set("other", "");
      expect([meta.get("machineId"), meta.get("other"), meta.get("absent")]).toEqual([
        "m-2",
        "",
        null,
      ]);
    });
  });
}

describe("MetaStore (SQLite only)", () => {
  test("values survive a reopen", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file);
      db.stores.meta.set("machineId", "m-1");
      db.stores.meta.set("note", "é€ text");
    }
    using db = openStores(file);
    expect([db.stores.meta.get("machineId"), db.stores.meta.get("note")]).toEqual([
      "m-1",
      "é€ text",
    ]);
  });
});
