/**
 * Which peers a sync dials in one round of reads, and when it tries again one that did not answer
 * or is no member. Pure: peers are keys, the clock is passed in.
 *
 * The candidates are every peer in the book and every holder the tracker's directory lists, and
 * anyone can list itself at a tracker (or fill the book through discovery) as often as it likes.
 * Dialled all at once, every round, 10,000 listed addresses were 10,000 sockets and 10,000 read
 * buffers each 10 s. So:
 * - a round dials at most MAX_SYNC_PEERS peers, in this order: the ones the user named, the
 *   members we read before, then the rest of the book (LAN, discovery, inbound), then the
 *   tracker's holders; duplicates once. A member already read keeps its place whatever is listed.
 * - at most DIALS_AT_ONCE of them at once (readers.ts).
 * - a peer that did not answer is skipped for RETRY_FIRST_MS, doubled at each further failure up
 *   to RETRY_MAX_MS (a named neighbour: NAMED_RETRY_MAX_MS at most); one that answered as no
 *   member (no proof of the key, a plain `serve`, an older swarm) for NOT_MEMBER_MS. A peer that
 *   reads our index has proved the key to us: it is dialled at once again (`cleared`).
 * - what is remembered is bounded (MAX_REMEMBERED: the expired go first, then the oldest).
 */

/** Peers dialled in one round of reads, at most. */
export const MAX_SYNC_PEERS = 64;
/** Dials (and index reads) in progress at once, at most. */
export const DIALS_AT_ONCE = 16;
/** A peer that did not answer is skipped this long, doubled at each further failure... */
export const RETRY_FIRST_MS = 10_000;
/** ...up to this. */
export const RETRY_MAX_MS = 300_000;
/** A peer the user named is tried again at least this often. */
export const NAMED_RETRY_MAX_MS = 60_000;
/** A peer that answered as no member is skipped this long. */
export const NOT_MEMBER_MS = 300_000;
/** Peers whose failures are remembered, at most. */
export const MAX_REMEMBERED = 4_096;

interface Skip {
  until: number;
  fails: number;
}

export class DialBackoff {
  private readonly skips = new Map<string, Skip>();

  /** The peer did not answer (refused, timed out, closed before it said who it is). */
  failed(key: string, now: number, named = false): void {
    const fails = (this.skips.get(key)?.fails ?? 0) + 1;
    const wait = Math.min(named ? NAMED_RETRY_MAX_MS : RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(fails - 1, 20));
    this.put(key, { until: now + wait, fails }, now);
  }

  /** The peer answered and is no member of this folder (or no sync peer at all). */
  notMember(key: string, now: number, named = false): void {
    this.put(key, { until: now + (named ? NAMED_RETRY_MAX_MS : NOT_MEMBER_MS), fails: this.skips.get(key)?.fails ?? 0 }, now);
  }

  /** The peer answered as a member, or proved the key to us: dial it whenever there is reason. */
  cleared(key: string): void {
    this.skips.delete(key);
  }

  /** True while the peer is skipped. */
  waiting(key: string, now: number): boolean {
    const s = this.skips.get(key);
    return !!s && s.until > now;
  }

  get size(): number {
    return this.skips.size;
  }

  private put(key: string, s: Skip, now: number): void {
    this.skips.delete(key); // (re-inserted: the newest)
    if (this.skips.size >= MAX_REMEMBERED) {
      for (const [k, v] of this.skips) if (v.until <= now) this.skips.delete(k);
      while (this.skips.size >= MAX_REMEMBERED) this.skips.delete(this.skips.keys().next().value!);
    }
    this.skips.set(key, s);
  }
}

/**
 * The peers of one round: the tiers in order, each peer once, none that is skipped, at most
 * `max`. `keyOf` names a peer; `waiting` says whether it is skipped now.
 */
export function choosePeers<T>(tiers: readonly (readonly T[])[], keyOf: (p: T) => string, waiting: (key: string) => boolean, max = MAX_SYNC_PEERS): T[] {
  const out: T[] = [];
  const seen = new Set<string>();
  for (const tier of tiers) {
    for (const p of tier) {
      if (out.length >= max) return out;
      const k = keyOf(p);
      if (seen.has(k)) continue;
      seen.add(k);
      if (!waiting(k)) out.push(p);
    }
  }
  return out;
}

/** Run `fn` on every item, at most `limit` at once; resolves when all have settled. */
export async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch {
        // one peer's failure is that peer's: the round goes on (fn reports its own errors)
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
