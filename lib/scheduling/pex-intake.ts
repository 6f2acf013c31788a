/**
 * How many addresses a download takes from peer exchange (`peers` messages). Pure: the clock is
 * passed in. A peer's `peers` names holders it heard of; nothing proves they exist, and every
 * address taken is a connection we open. Without a bound, one peer sending a message of 100 new
 * addresses every 20 ms made a downloader open ~2,200 connections a second to whatever it named
 * (hostile review): a connection amplifier. So: at most PEX_PER_PEER new addresses from one
 * connection, and overall a bucket of PEX_BURST addresses refilled at PEX_PER_SEC.
 */
export const PEX_PER_PEER = 50;
export const PEX_BURST = 48;
export const PEX_PER_SEC = 1;

export class PexIntake {
  private tokens = PEX_BURST;
  private last: number;
  /** New addresses taken from each peer record so far. */
  private readonly taken = new Map<number, number>();

  constructor(now: number) {
    this.last = now;
  }

  /** Of `fresh` (addresses not known yet) offered by peer `from`, the ones to take now. */
  take<T>(from: number, fresh: T[], now: number): T[] {
    this.tokens = Math.min(PEX_BURST, this.tokens + ((now - this.last) * PEX_PER_SEC) / 1000);
    this.last = now;
    const before = this.taken.get(from) ?? 0;
    const n = Math.max(0, Math.min(fresh.length, PEX_PER_PEER - before, Math.floor(this.tokens)));
    if (n === 0) return [];
    this.tokens -= n;
    this.taken.set(from, before + n);
    return fresh.slice(0, n);
  }

  /** Peer record `id` is gone for good. */
  forget(id: number): void {
    this.taken.delete(id);
  }
}
