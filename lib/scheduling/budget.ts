/**
 * The byte budget: chunk bytes requested but not yet on disk, summed over all peers. Memory of a
 * download is bounded by this (plus a fixed overhead), never by the file size. Pure.
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.used;
  }

  get free(): number {
    return Math.max(0, this.limit - this.used);
  }

  /** Take n bytes if they fit; the first reservation always fits so a tiny budget cannot deadlock. */
  tryTake(n: number): boolean {
    if (this.used > 0 && this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}
