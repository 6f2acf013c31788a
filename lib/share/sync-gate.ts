/**
 * Whether the share's small file calls may run on the calling thread now. Pure; the clock is
 * passed in.
 *
 * Serving makes its small reads and its opens synchronously (file-source.ts): from the page cache
 * each takes a few microseconds, a thread-pool round trip several times that. On a cold disk, or a
 * slow network mount inside the share, one such call holds the whole event loop (every connection,
 * the tracker link, the bars) for the disk's latency. So each synchronous call is timed; when
 * SLOW_OF_RECENT of the last RECENT_CALLS took longer than SLOW_SYNC_MS, the calls go to the
 * thread pool for SYNC_BACKOFF_MS, doubled while they keep being slow (up to MAX_SYNC_BACKOFF_MS).
 * A share on a cold disk makes most calls slow, so the gate closes after a few of them; a single
 * slow call is more often the thread being preempted on a busy machine (a first version closed on
 * any slow call and did so every few hundred calls of a sync on tmpfs, costing the serving side
 * 0.5 CPU s per 10,000 files). Counting calls alone misses a disk that is slow for only some of
 * them (most reads cached, one in five a 50 ms seek: 4 of 16 slow, yet the loop held most of each
 * second), so the gate also closes when slow calls held the loop BLOCKED_MS_PER_WINDOW within
 * about WINDOW_MS (at least MIN_SLOW_IN_WINDOW of them: one long preemption is not a slow disk).
 * Both are sums that halve every WINDOW_MS, not counts reset each window: reset, a peer mixing
 * cached and cold reads kept the gate open while the loop was held 20-60% of the time (100-300 ms
 * calls twice a second; hostile review 52's simulation). And one call of VERY_SLOW_MS or more closes
 * it at once: no preemption lasts that long, a slow mount does. A call
 * that never returns (a hung mount) still holds the loop once: only a thread could avoid that, at
 * its cost for every call.
 */

/** A synchronous call slower than this counts as slow. */
export const SLOW_SYNC_MS = 2;
/** The calls looked at, and how many of them slow close the gate. */
export const RECENT_CALLS = 16;
export const SLOW_OF_RECENT = 6;
export const SYNC_BACKOFF_MS = 5_000;
/** Slow calls that together held the loop this long within WINDOW_MS close it too (with MIN_SLOW_IN_WINDOW of them). */
export const BLOCKED_MS_PER_WINDOW = 100;
export const WINDOW_MS = 1_000;
export const MIN_SLOW_IN_WINDOW = 3;
export const MAX_SYNC_BACKOFF_MS = 60_000;
/** One synchronous call this long closes the gate at once. */
export const VERY_SLOW_MS = 500;

export class SyncGate {
  private slowUntil = 0;
  /** The last RECENT_CALLS calls, a bit each (1: slow), the newest lowest. */
  private recent = 0;
  private lastClosedAt = -Infinity;
  private backoffMs = SYNC_BACKOFF_MS;
  /** Time-based closing: the time slow calls took and how many, each halved every WINDOW_MS since `decayedAt`. */
  private decayedAt = -Infinity;
  private windowBlockedMs = 0;
  private windowSlow = 0;
  readonly counters = { slow: 0, closed: 0, deferred: 0 };

  /** True when a small call may run synchronously at `now`. */
  allowed(now: number): boolean {
    if (now >= this.slowUntil) return true;
    this.counters.deferred++;
    return false;
  }

  /** A synchronous call took `ms`, ending at `now`. */
  took(ms: number, now: number): void {
    const slow = ms > SLOW_SYNC_MS;
    this.recent = ((this.recent << 1) | (slow ? 1 : 0)) & ((1 << RECENT_CALLS) - 1);
    if (!slow) return;
    this.counters.slow++;
    const f = Number.isFinite(this.decayedAt) ? Math.pow(2, -Math.max(0, now - this.decayedAt) / WINDOW_MS) : 0;
    this.decayedAt = now;
    this.windowBlockedMs = this.windowBlockedMs * f + ms;
    this.windowSlow = this.windowSlow * f + 1;
    const heldTheLoop = this.windowSlow >= MIN_SLOW_IN_WINDOW && this.windowBlockedMs >= BLOCKED_MS_PER_WINDOW;
    if (popcount(this.recent) < SLOW_OF_RECENT && !heldTheLoop && ms < VERY_SLOW_MS) return;
    this.recent = 0;
    this.decayedAt = -Infinity;
    this.windowBlockedMs = 0;
    this.windowSlow = 0;
    this.counters.closed++;
    // slow again soon after the last back-off ended: the disk is still cold, wait longer
    this.backoffMs = now - this.lastClosedAt < 2 * this.backoffMs ? Math.min(MAX_SYNC_BACKOFF_MS, this.backoffMs * 2) : SYNC_BACKOFF_MS;
    this.lastClosedAt = now;
    this.slowUntil = now + this.backoffMs;
  }
}

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}

/** The gate of this process's shares (one disk's latency is every share's on it). */
export const shareSyncGate = new SyncGate();
