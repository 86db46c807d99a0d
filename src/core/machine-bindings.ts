/**
 * A machineId belongs to the key it first authenticated with (docs/protocol.md
 * "Authentication", point 5). Without this, a daemon holding any accepted key
 * (another pool's) could authenticate with a victim's machineId, replace its
 * connection (4409) and inherit its tasks.
 *
 * The bindings are held here, in memory, and written through the store (so a
 * restart keeps them); a decision never waits for a read of the database,
 * which may not hold the turn's writes yet. Keys are kept as fingerprints
 * (key-check.ts), under a per-relay secret stored in the meta store.
 */
import type { Clock } from "./clock.ts";
import { createKeyFingerprint, newFingerprintSecret, sameFingerprint } from "./key-check.ts";
import type { BindingStore, MetaStore } from "./ports.ts";

/** Meta-store key of the secret behind key fingerprints. */
export const FINGERPRINT_SECRET = "keyFingerprintSecret";

/** `bound`: first time seen, now bound to this key; `same`: bound to it already; `other`: to another key. */
export type Claim = "bound" | "same" | "other";

interface Loaded {
  fingerprint: (key: string) => string;
  byMachine: Map<string, string>;
}

export class MachineBindings {
  private loaded: Loaded | null = null;

  constructor(
    private readonly store: BindingStore,
    private readonly meta: MetaStore,
    private readonly clock: Pick<Clock, "now">,
    private readonly newSecret: () => string = newFingerprintSecret,
  ) {}

  /** Read once, on first use: the secret (made on the relay's first day) and every binding. */
  private state(): Loaded {
    if (this.loaded) return this.loaded;
    let secret = this.meta.get(FINGERPRINT_SECRET);
    if (secret === null) {
      secret = this.newSecret();
      this.meta.set(FINGERPRINT_SECRET, secret);
    }
    const byMachine = new Map(this.store.all().map((b) => [b.machineId, b.fingerprint] as const));
    this.loaded = { fingerprint: createKeyFingerprint(secret), byMachine };
    return this.loaded;
  }

  /**
   * A daemon with an accepted `key` asks for `machineId`: a machineId seen for
   * the first time (or released) is bound to that key here.
   */
  claim(machineId: string, key: string): Claim {
    const { fingerprint, byMachine } = this.state();
    const presented = fingerprint(key);
    const bound = byMachine.get(machineId);
    if (bound !== undefined) return sameFingerprint(bound, presented) ? "same" : "other";
    byMachine.set(machineId, presented);
    this.store.bind({ machineId, fingerprint: presented, boundAt: this.clock.now() });
    return "bound";
  }

  isBound(machineId: string): boolean {
    return this.state().byMachine.has(machineId);
  }

  /** Forgets a binding (an operator's decision); false when there was none. */
  release(machineId: string): boolean {
    if (!this.state().byMachine.delete(machineId)) return false;
    this.store.release(machineId);
    return true;
  }

  /**
   * The accepted keys are now `keys` (a reload): every binding to a key not
   * among them is released, and its machineIds returned. The key it protected
   * is refused from now on, so the binding guards nothing; released, it lets
   * the machine's daemon come back with its new key.
   */
  releaseAllBut(keys: readonly string[]): string[] {
    const { fingerprint, byMachine } = this.state();
    const kept = new Set(keys.filter((k) => k.length > 0).map(fingerprint));
    const released = [...byMachine].filter(([, bound]) => !kept.has(bound)).map(([id]) => id);
    for (const machineId of released) this.release(machineId);
    return released;
  }

  get size(): number {
    return this.state().byMachine.size;
  }
}
