import { describe, expect, test } from "bun:test";
import { openStores, tempDir } from "./helpers.ts";

describe("MetaStore", () => {
  test("get, set and overwrite", () => {
    using db = openStores();
    const { meta } = db.stores;
    expect(meta.get("machineId")).toBeNull();
    meta.set("machineId", "m-1");
    meta.set("machineId", "m-2");
    meta.set("other", "");
    expect([meta.get("machineId"), meta.get("other")]).toEqual(["m-2", ""]);
  });

  test("increment starts at 0, adds, and stores the number as text", () => {
    using db = openStores();
    const { meta } = db.stores;
    expect(meta.increment("spawned")).toBe(1);
    expect(meta.increment("spawned", 41)).toBe(42);
    expect(meta.increment("spawned", -2)).toBe(40);
    expect(meta.increment("fresh", 5)).toBe(5);
    meta.set("preset", "100");
    expect(meta.increment("preset")).toBe(101);
    expect(meta.get("spawned")).toBe("40");
  });

  test("values survive a reopen", () => {
    using dir = tempDir();
    const file = dir.file("relay.db");
    {
      using db = openStores(file);
      db.stores.meta.set("machineId", "m-1");
      db.stores.meta.increment("restarts", 3);
    }
    using db = openStores(file);
    expect([db.stores.meta.get("machineId"), db.stores.meta.increment("restarts")]).toEqual([
      "m-1",
      4,
    ]);
  });
});
