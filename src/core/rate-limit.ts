/**
 * A token bucket per daemon: `rate` frames a second on average, `burst` at
 * once. It guards the relay against a buggy daemon flooding it; the clock is
 * injected so tests step time instead of sleeping.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.updatedAt = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    if (now > this.updatedAt) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.rate) / 1000);
      this.updatedAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
