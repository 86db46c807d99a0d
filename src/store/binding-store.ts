/** machineId bindings (docs/protocol.md "Authentication", point 5): which key fingerprint owns each. */
import { eq, sql } from "drizzle-orm";
import type { BindingStore, MachineBinding } from "../core/ports.ts";
import { machineBindings } from "./schema.ts";
import type { StoreReader, StoreWriter } from "./store-writer.ts";

const p = sql.placeholder;

export function createBindingStore(reader: StoreReader, writer: StoreWriter): BindingStore {
  const allStmt = reader
    .select({
      machineId: machineBindings.machineId,
      fingerprint: machineBindings.keyFingerprint,
      boundAt: machineBindings.boundAt,
    })
    .from(machineBindings)
    .prepare();
  // An upsert, so that applying it again after a rolled-back commit gives the same row.
  const bindStmt = writer.prepare((db) =>
    db
      .insert(machineBindings)
      .values({
        machineId: p("machineId"),
        keyFingerprint: p("fingerprint"),
        boundAt: p("boundAt"),
      })
      .onConflictDoUpdate({
        target: machineBindings.machineId,
        set: { keyFingerprint: sql`excluded.key_fingerprint`, boundAt: sql`excluded.bound_at` },
      })
      .prepare(),
  );
  const releaseStmt = writer.prepare((db) =>
    db
      .delete(machineBindings)
      .where(eq(machineBindings.machineId, p("machineId")))
      .prepare(),
  );

  return {
    all: (): MachineBinding[] => allStmt.all(),
    bind: (b) => writer.write((tx) => tx(bindStmt).run({ ...b })),
    release: (machineId) => writer.write((tx) => tx(releaseStmt).run({ machineId })),
  };
}
