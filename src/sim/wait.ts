/**
 * The waiting machinery shared by the simulated server and daemons: a
 * Recorder keeps what arrived (frames, connections, closes, log lines) in
 * order, with a set of waiters, each with one timer. (Not the relay's
 * EventLog port in core/ports.ts, which writes structured events out.)
 * Tests wait for the exact event instead of sleeping, so a slow CI box only
 * makes them slower, never flaky.
 */

export const DEFAULT_WAIT_MS = 5000;

// biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON that tests pick apart freely.
export type Json = any;

export type Predicate<T> = (item: T) => boolean;

interface Waiter<T> {
  predicate: Predicate<T>;
  resolve: (item: T) => void;
}

/** What arrived, in order, and waiters for items still to come. */
export class Recorder<T> {
  readonly items: T[] = [];
  readonly #waiters = new Set<Waiter<T>>();
  readonly #listeners = new Set<(item: T) => void>();

  constructor(
    /** Names the log in timeout errors ("frames from conn-1", …). */
    readonly name: string,
    /** Summarises an item for timeout errors; kept short on purpose. */
    readonly describe: (item: T) => string = (item) => String(item),
  ) {}

  push(item: T): void {
    this.items.push(item);
    for (const listener of this.#listeners) listener(item);
    // A snapshot: resolving a waiter deletes it from the set being walked.
    for (const waiter of [...this.#waiters]) {
      if (safeMatch(waiter.predicate, item)) waiter.resolve(item);
    }
  }

  /** Calls `listener` for every item pushed from now on; returns the unsubscribe. */
  subscribe(listener: (item: T) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Forgets the history (long benchmarks); pending waiters stay. */
  clear(): void {
    this.items.length = 0;
  }

  /**
   * Resolves with the first item matching `predicate`, looking first at the
   * items logged from index `from` on, then at those that arrive later.
   * Rejects after `timeoutMs` with the predicate's source and the last items
   * seen, which is usually enough to tell why a test hung.
   */
  waitFor(predicate: Predicate<T>, timeoutMs = DEFAULT_WAIT_MS, from = 0): Promise<T> {
    for (let i = Math.max(0, from); i < this.items.length; i++) {
      const item = this.items[i] as T;
      if (safeMatch(predicate, item)) return Promise.resolve(item);
    }
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const waiter: Waiter<T> = {
      predicate,
      resolve: (item) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve(item);
      },
    };
    const timer = setTimeout(() => {
      this.#waiters.delete(waiter);
      reject(new Error(this.#timeoutMessage(predicate, timeoutMs)));
    }, timeoutMs);
    this.#waiters.add(waiter);
    return promise;
  }

  /** Like `waitFor`, but ignores everything logged before the call. */
  waitForNext(predicate: Predicate<T>, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    return this.waitFor(predicate, timeoutMs, this.items.length);
  }

  #timeoutMessage(predicate: Predicate<T>, timeoutMs: number): string {
    const recent = this.items.slice(-5).map((item) => `  ${truncate(this.describe(item), 200)}`);
    return [
      `timed out after ${timeoutMs} ms waiting in ${this.name} for ${truncate(predicate.toString(), 200)}`,
      `${this.items.length} item(s) seen${recent.length > 0 ? ", the last ones:" : ""}`,
      ...recent,
    ].join("\n");
  }
}

/** A predicate that throws (e.g. reads a field of `undefined`) simply does not match. */
function safeMatch<T>(predicate: Predicate<T>, item: T): boolean {
  try {
    return predicate(item);
  } catch {
    return false;
  }
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** Parses a frame for inspection; a frame that is not JSON gives `undefined`. */
export function tryParse(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** Frames are text by contract; binary ones are decoded so tests can still see them. */
export function frameText(data: string | ArrayBuffer | ArrayBufferView): string {
  if (typeof data === "string") return data;
  const bytes =
    data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(bytes).toString("utf8");
}

/** Epoch milliseconds with sub-millisecond precision, for latency figures. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
