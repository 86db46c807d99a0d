/**
 * Why the relay as a whole stops reading daemon sockets: the upstream is
 * congested, commits fail (docs/protocol.md "Storage failures"), or the
 * outbox is over its limit with task results it may not drop ("Durable
 * outbox"). This class owns those three facts; DaemonLiveness applies the
 * result to each socket, together with the daemon's own throttle.
 */
export type ReadStop = "congested" | "storage" | "outboxFull";

export class ReadGate {
  private readonly stops = new Set<ReadStop>();

  /** Called after every change: each daemon's reading is decided again. */
  constructor(private readonly changed: () => void) {}

  /** Is this reason in force? */
  has(reason: ReadStop): boolean {
    return this.stops.has(reason);
  }

  /** No reason in force: daemons are read (unless throttled). */
  get open(): boolean {
    return this.stops.size === 0;
  }

  set(reason: ReadStop, on: boolean): void {
    if (on === this.stops.has(reason)) return;
    if (on) this.stops.add(reason);
    else this.stops.delete(reason);
    this.changed();
  }
}
