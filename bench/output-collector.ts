/**
 * Counts the stream scenarios' taskOutput frames as the server receives them:
 * arrivals, bytes, one-way latency (server arrival − `sentAt` in the frame),
 * and frames that arrived out of order or twice for their task.
 */
import type { ReceivedByServer, SimServer } from "../src/sim/index.ts";
import { outputStamp } from "./frames.ts";
import { Samples } from "./stats.ts";

const SETTLE_POLL_MS = 10;

export class OutputCollector {
  received = 0;
  bytes = 0;
  /** A seq not above the last one seen for its task: reordered or duplicated. */
  disordered = 0;
  firstSentAt = Number.POSITIVE_INFINITY;
  firstAt = 0;
  lastAt = 0;
  readonly latency = new Samples();
  readonly #lastSeq = new Map<string, number>();
  readonly #unsubscribe: () => void;

  constructor(sim: SimServer) {
    this.#unsubscribe = sim.onFrame((f) => this.#on(f));
  }

  #on(f: ReceivedByServer): void {
    const stamp = outputStamp(f.msg);
    if (!stamp) return;
    this.received++;
    this.bytes += f.raw.length;
    this.latency.add(f.at - stamp.sentAt);
    if (stamp.sentAt < this.firstSentAt) this.firstSentAt = stamp.sentAt;
    if (this.firstAt === 0) this.firstAt = f.at;
    this.lastAt = f.at;
    const last = this.#lastSeq.get(stamp.taskId);
    if (last !== undefined && stamp.seq <= last) this.disordered++;
    else this.#lastSeq.set(stamp.taskId, stamp.seq);
  }

  /** Frames a second from the first write to the last arrival. */
  get framesPerSec(): number {
    const ms = this.lastAt - this.firstSentAt;
    return ms > 0 ? (this.received * 1000) / ms : 0;
  }

  get megabytesPerSec(): number {
    const ms = this.lastAt - this.firstSentAt;
    return ms > 0 ? this.bytes / 1e6 / (ms / 1000) : 0;
  }

  /**
   * Resolves once `expected` frames arrived, or nothing arrived for `idleMs`,
   * or at `timeoutMs`, whichever comes first.
   */
  async settle(expected: number, idleMs: number, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let seen = this.received;
    let idleSince = performance.now();
    while (this.received < expected && performance.now() < deadline) {
      await Bun.sleep(SETTLE_POLL_MS);
      if (this.received !== seen) {
        seen = this.received;
        idleSince = performance.now();
      } else if (performance.now() - idleSince > idleMs) {
        return;
      }
    }
  }

  stop(): void {
    this.#unsubscribe();
  }
}
