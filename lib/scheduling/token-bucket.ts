/**
 * A token bucket for upload rate limits (`swarm serve --max-upload`). Pure: `delayFor(n, now)`
 * takes n tokens (going into debt if need be) and says how long the caller should wait before
 * sending, so a burst is at most one second's worth.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(readonly bytesPerSec: number, now: number) {
    this.tokens = bytesPerSec;
    this.last = now;
  }

  delayFor(n: number, now: number): number {
    this.tokens = Math.min(this.bytesPerSec, this.tokens + ((now - this.last) * this.bytesPerSec) / 1000);
    this.last = now;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.bytesPerSec);
  }
}
