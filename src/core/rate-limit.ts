/**
 * A token bucket: `rate` tokens a second on average, `burst` at once
 * (docs/protocol.md "Rate limit: slow down, never drop"). A daemon has one
 * for frames (a token each) and one for bytes (a token per character). Every
 * frame read is handled and takes its tokens, even past empty: frames already
 * read when the socket was paused run the bucket into debt, which the pause
 * then waits out. The clock is injected so tests step time instead of sleeping.
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

  /** Takes `cost` tokens (one frame, or its size); true when the bucket is now empty: stop reading until `resumeIn`. */
  take(now: number, cost = 1): boolean {
    this.refill(now);
    this.tokens -= cost;
    return this.tokens < 1;
  }

  /** Milliseconds until enough tokens are back to read again (0: now). */
  resumeIn(now: number): number {
    this.refill(now);
    if (this.tokens >= this.resumeAt) return 0;
    return Math.ceil(((this.resumeAt - this.tokens) * 1000) / this.rate);
  }
}
