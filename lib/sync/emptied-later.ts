/**
 * Folders emptied by deletions made here, removed later: only after they stayed empty and
 * untouched EMPTIED_GRACE_MS (a user who empties a folder is often about to fill it again), as every
 * member that takes the deletion removes them (landing.ts `removeEmptied`, which checks again).
 * The timers stop at close, and close waits for a removal under way.
 */

/** How long a folder emptied here must stay empty and untouched before it goes. */
export const EMPTIED_GRACE_MS = 10_000;

export class EmptiedLater {
  private readonly timers = new Set<NodeJS.Timeout>();
  private tidying: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly remove: (names: string[], o: { untouchedMs: number }) => Promise<void>,
    private readonly graceMs = EMPTIED_GRACE_MS,
  ) {}

  /** Files `names` were deleted here: the folders they emptied go after the grace. */
  after(names: string[]): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closed) this.tidying = this.tidying.then(() => this.remove(names, { untouchedMs: this.graceMs }));
    }, this.graceMs);
    timer.unref();
    this.timers.add(timer);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.tidying;
  }
}
