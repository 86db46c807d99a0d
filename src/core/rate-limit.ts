/**
 * A token bucket per daemon: `rate` frames a second on average, `burst` at
 * once (docs/protocol.md "Rate limit: slow down, never drop"). Every frame
 * read is handled and takes a token, even past empty: frames already read
 * when the socket was paused run the bucket into debt, which the pause then
 * waits out. The clock is injected so tests step time instead of sleeping.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  /** Reading resumes only once this many tokens are back, so a flood is paused a few times a second, not at every frame. */
  private readonly resumeAt: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.updatedAt = now;
    this.resumeAt = Math.max(1, Math.min(burst, Math.ceil(rate / 10)));
  }

  private refill(now: number): void {
    if (now <= this.updatedAt) return;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.rate) / 1000);
    this.updatedAt = now;
  }

  /** Counts one frame; true when the bucket is now empty: stop reading until `resumeIn`. */
  take(now: number): boolean {
    this.refill(now);
    this.tokens -= 1;
    return this.tokens < 1;
  }

  /** Milliseconds until enough tokens are back to read again (0: now). */
  resumeIn(now: number): number {
    this.refill(now);
    if (this.tokens >= this.resumeAt) return 0;
    return Math.ceil(((this.resumeAt - this.tokens) * 1000) / this.rate);
  }
}
