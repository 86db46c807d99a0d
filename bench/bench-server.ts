/**
 * The simulated Makima server as the bench uses it: one fresh SimServer per
 * run (no connection history or stray reconnects carried over), its frame log
 * emptied on a timer so a long run stays flat in memory. It lives in the
 * bench main process; see BENCHMARKS.md "Processes" for why.
 */
import { type SimConnection, type SimServer, startSimServer } from "../src/sim/index.ts";

const CLEAR_EVERY_MS = 200;
const POLL_MS = 20;

export class BenchServer implements AsyncDisposable {
  readonly sim: SimServer;
  readonly #clearTimer: ReturnType<typeof setInterval>;

  constructor() {
    this.sim = startSimServer({ hostname: "127.0.0.1" });
    this.#clearTimer = setInterval(() => this.sim.clearReceived(), CLEAR_EVERY_MS);
  }

  get url(): string {
    return this.sim.url;
  }

  /** The relay's upstream connection, once it has authenticated. */
  relayConnection(timeoutMs = 15_000): Promise<SimConnection> {
    return this.sim.waitForConnection(timeoutMs, (c) => c.role === "relay");
  }

  /** Resolves with the open connections once there are at least `n`. */
  async connections(n: number, timeoutMs: number): Promise<SimConnection[]> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const open = this.sim.connections;
      if (open.length >= n) return open;
      if (performance.now() > deadline) {
        throw new Error(`only ${open.length} of ${n} daemons authenticated at the server`);
      }
      await Bun.sleep(POLL_MS);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#clearTimer);
    await this.sim.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
