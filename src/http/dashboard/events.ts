/**
 * The dashboard's Server-Sent Events (text/event-stream, WHATWG HTML
 * "Server-sent events"). One feed rebuilds the snapshot every `intervalMs`
 * while a stream is open and keeps only the latest; every stream pulls from
 * it. Nothing is ever queued per stream: a stream is handed the latest
 * snapshot only when its consumer asks for more (a pull-based ReadableStream
 * with highWaterMark 0; Bun.serve pulls again only once the socket has taken
 * the previous chunk), so a reader that does not keep up skips the snapshots
 * it missed instead of piling them up in the relay. A comment line goes out
 * when nothing else did for `keepAliveMs`, because Bun.serve closes a
 * response that makes no progress for its idleTimeout (10 s by default),
 * which is also what ends a stream whose reader stopped reading.
 */

export interface SnapshotFeedOptions<T> {
  build(): T;
  now(): number;
  intervalMs: number;
  keepAliveMs: number;
  /** Streams open at once; `open()` refuses more. */
  maxStreams: number;
  /**
   * Largest snapshot JSON sent. The snapshot is built from bounded parts, so
   * one over it is a bug: reported, and the previous snapshot stays current.
   */
  maxSnapshotBytes: number;
  /** A snapshot that failed to build (a bug or a failing store); the streams go on. */
  onError?(error: unknown): void;
}

/** One open stream, as the feed sees it. */
export interface StreamStats {
  /** Version of the last snapshot handed to it (0: none yet). */
  sentVersion: number;
  /** Bytes handed to the HTTP layer so far; only ever in answer to a pull. */
  handedBytes: number;
  /** Its consumer asked for more and waits for a change or a keep-alive. */
  waiting: boolean;
}

export interface FeedStats {
  streams: StreamStats[];
  /** Snapshots published: each one whose JSON differed from the one before. */
  version: number;
  /** Bytes of the current snapshot's JSON, shared by every stream. */
  snapshotBytes: number;
}

/** How long the browser waits before reconnecting after the stream drops (the SSE `retry` field). */
const RETRY_MS = 1000;
/** Room for the event's framing around the snapshot JSON. */
const FRAMING_BYTES = 64;

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  greeted: boolean;
  sentVersion: number;
  handedBytes: number;
  lastWrite: number;
  /** Resolves the consumer's pending pull. */
  wake: (() => void) | null;
}

const encoder = new TextEncoder();

export class SnapshotFeed<T> {
  private readonly clients = new Set<Client>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private json = "";
  private version = 0;

  constructor(private readonly opts: SnapshotFeedOptions<T>) {}

  /** The most bytes one event can take: what a stream holds at most beyond the socket. */
  get maxEventBytes(): number {
    return this.opts.maxSnapshotBytes + FRAMING_BYTES;
  }

  get size(): number {
    return this.clients.size;
  }

  stats(): FeedStats {
    return {
      streams: [...this.clients].map((c) => ({
        sentVersion: c.sentVersion,
        handedBytes: c.handedBytes,
        waiting: c.wake !== null,
      })),
      version: this.version,
      snapshotBytes: Buffer.byteLength(this.json, "utf8"),
    };
  }

  /** A new stream, or null when `maxStreams` are open already. */
  open(): ReadableStream<Uint8Array> | null {
    if (this.clients.size >= this.opts.maxStreams) return null;
    let client: Client | undefined;
    return new ReadableStream<Uint8Array>(
      {
        // Runs inside the constructor: the stream counts from here.
        start: (controller) => {
          client = {
            controller,
            greeted: false,
            sentVersion: 0,
            handedBytes: 0,
            lastWrite: this.opts.now(),
            wake: null,
          };
          this.clients.add(client);
          if (this.clients.size === 1) this.startTimer();
        },
        pull: () => (client ? this.pull(client) : undefined),
        cancel: () => {
          if (client) this.close(client);
        },
      },
      // No queue: pull() runs only when the consumer has a read waiting.
      { highWaterMark: 0 },
    );
  }

  private startTimer(): void {
    this.publish();
    this.timer = setInterval(() => this.tick(), this.opts.intervalMs);
  }

  private close(client: Client): void {
    if (!this.clients.delete(client)) return;
    const wake = client.wake;
    client.wake = null;
    wake?.();
    if (this.clients.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private tick(): void {
    this.publish();
    for (const client of this.clients) {
      if (client.wake && this.deliver(client)) {
        const wake = client.wake;
        client.wake = null;
        wake();
      }
    }
  }

  /** Rebuilds the snapshot; a changed one becomes the next version. */
  private publish(): void {
    let json: string;
    try {
      json = JSON.stringify(this.opts.build());
    } catch (error) {
      this.opts.onError?.(error);
      return;
    }
    if (json === this.json) return;
    const bytes = Buffer.byteLength(json, "utf8");
    if (bytes > this.opts.maxSnapshotBytes) {
      this.opts.onError?.(
        new RangeError(`dashboard snapshot of ${bytes} bytes, over ${this.opts.maxSnapshotBytes}`),
      );
      return;
    }
    this.json = json;
    this.version += 1;
  }

  /** The consumer wants more: what is due now, or a promise kept once something is. */
  private pull(client: Client): Promise<void> | undefined {
    if (this.deliver(client)) return undefined;
    return new Promise<void>((resolve) => {
      client.wake = resolve;
    });
  }

  /** Hands the stream the latest snapshot it has not had, or a keep-alive when due. */
  private deliver(client: Client): boolean {
    const now = this.opts.now();
    let text = "";
    if (!client.greeted) text += `retry: ${RETRY_MS}\n\n`;
    if (client.sentVersion < this.version) {
      // serverTime is when the stream was handed it: the page counts ages from there.
      text += `event: snapshot\ndata: {"serverTime":${now},"snapshot":${this.json}}\n\n`;
      client.sentVersion = this.version;
    } else if (now - client.lastWrite >= this.opts.keepAliveMs) {
      text += ": keep-alive\n\n";
    }
    if (text === "") return false;
    const chunk = encoder.encode(text);
    try {
      client.controller.enqueue(chunk);
    } catch {
      // The client went away and the stream is closed: nothing left to feed.
      this.close(client);
      return true;
    }
    client.greeted = true;
    client.handedBytes += chunk.byteLength;
    client.lastWrite = now;
    return true;
  }
}
