/**
 * The bookkeeping that keeps a flood (seed 001's SEARCH and DISCOVER) bounded, with no sockets:
 * which message ids were seen (each is forwarded at most once, however many paths bring it),
 * where answers to a message go back to, and how many messages a sender may make us handle.
 * Everything here is bounded in entries and in time, whatever the network sends.
 */

/** Most hops a message may travel; a larger TTL is taken as this. */
export const MAX_TTL = 7;
/** Message ids remembered, and for how long (longer than any message lives in a loop). */
export const SEEN_MAX = 20_000;
export const SEEN_MS = 60_000;

/** A set of ids that forgets them after `ms`, and the oldest first when it holds `max`. */
export class ExpiringMap<V> {
  private readonly m = new Map<string, { v: V; until: number }>();
  constructor(
    private readonly max: number,
    private readonly ms: number,
  ) {}

  get(id: string, now = Date.now()): V | undefined {
    const e = this.m.get(id);
    if (!e) return undefined;
    if (e.until < now) {
      this.m.delete(id);
      return undefined;
    }
    return e.v;
  }

  has(id: string, now = Date.now()): boolean {
    return this.get(id, now) !== undefined;
  }

  set(id: string, v: V, now = Date.now()): void {
    this.m.delete(id);
    // entries go in in time order, so the first ones are the oldest: expired or evicted first
    for (const [k, e] of this.m) {
      if (this.m.size < this.max && e.until >= now) break;
      this.m.delete(k);
    }
    this.m.set(id, { v, until: now + this.ms });
  }

  delete(id: string): void {
    this.m.delete(id);
  }

  get size(): number {
    return this.m.size;
  }
}

/**
 * Messages per second one sender may make us handle (a token bucket per key, the keys themselves
 * bounded): what a flood of fresh ids from one connection costs us is capped.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly perSec: number,
    private readonly burst: number,
    private readonly maxKeys = 4096,
  ) {}

  take(key: string, now = Date.now()): boolean {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSec);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  forget(key: string): void {
    this.buckets.delete(key);
  }
}

/** Longest search pattern handled (longer ones are refused by the sender and dropped by peers). */
export const MAX_PATTERN_CHARS = 256;

/**
 * Does a name match a search pattern? Case-insensitive; a pattern with `*` or `?` is a glob over
 * the whole name, or over the file name when it has no `/` (`*` any run of characters, `?` one);
 * otherwise a substring. The glob is matched
 * by the two-pointer method (back to the last `*` on a mismatch): at most name × pattern steps, so
 * a hostile pattern such as `*a*a*a*a*b` cannot make a peer backtrack exponentially, as a regular
 * expression would.
 */
export function matcher(pattern: string, maxSteps = Infinity): (name: string) => boolean {
  const p = pattern.toLowerCase();
  // one budget for every name this pattern is matched against: past it, nothing more matches
  const budget = { left: maxSteps };
  if (!/[*?]/.test(p)) {
    return (name) => {
      if (budget.left <= 0) return false;
      budget.left -= name.length;
      return name.toLowerCase().includes(p);
    };
  }
  // a glob without a slash is about the file name (`cat*` finds photos/cat.jpg), as in find -name
  if (!p.includes('/')) return (name) => globMatch(p, name.toLowerCase(), budget) || globMatch(p, name.slice(name.lastIndexOf('/') + 1).toLowerCase(), budget);
  return (name) => globMatch(p, name.toLowerCase(), budget);
}

function globMatch(p: string, s: string, budget: { left: number }): boolean {
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (j < s.length) {
    if (--budget.left < 0) return false;
    if (i < p.length && (p[i] === '?' || p[i] === s[j])) {
      i++;
      j++;
    } else if (i < p.length && p[i] === '*') {
      star = i++;
      mark = j;
    } else if (star >= 0) {
      i = star + 1;
      j = ++mark;
    } else return false;
  }
  while (i < p.length && p[i] === '*') i++;
  return i === p.length;
}
