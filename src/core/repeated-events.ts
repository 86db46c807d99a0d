/**
 * Repeated connection-log events from one source shown as one row with a
 * count. Without it, a few hundred failed authentications from one address
 * push everything else (the record of an attack included) out of the
 * connection log. Within a window starting at a source's first event, each
 * repeat replaces that row (ConnectionLogOptions.replaces) with the count so
 * far; the next event after the window starts a new row.
 */
import type { Clock } from "./clock.ts";
import type { EventLog, LogLevel } from "./ports.ts";

/** One row per source and event within this long (the rows say "in the last minute"). */
export const REPEAT_WINDOW_MS = 60_000;
/** Sources followed at once; past it the oldest is forgotten (its next event starts a new row). */
export const MAX_SOURCES = 4096;

interface Window {
  start: number;
  count: number;
}

export interface RepeatedEvent {
  event: string;
  /** Who it is about: an address, or an address and a machineId. */
  source: string;
  level: LogLevel;
  security?: boolean;
  /** The row's text, given how many times the event happened in the window (1 for the first). */
  details(count: number): string;
}

export class RepeatedEvents {
  // Insertion order is window-start order: a new window is always added at the end.
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly clock: Pick<Clock, "now">,
    private readonly log: EventLog,
  ) {}

  note(e: RepeatedEvent): void {
    const now = this.clock.now();
    this.expire(now);
    const id = `${e.event} ${e.source}`;
    let window = this.windows.get(id);
    if (window === undefined) {
      window = { start: now, count: 0 };
      this.windows.set(id, window);
      if (this.windows.size > MAX_SOURCES)
        this.windows.delete(this.windows.keys().next().value as string);
    }
    window.count += 1;
    this.log.connection(e.event, e.details(window.count), e.level, {
      replaces: `${id} ${window.start}`,
      ...(e.security ? { security: true } : {}),
    });
  }

  private expire(now: number): void {
    for (const [id, w] of this.windows) {
      if (now - w.start < REPEAT_WINDOW_MS) return;
      this.windows.delete(id);
    }
  }
}
