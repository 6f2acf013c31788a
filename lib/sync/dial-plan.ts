/**
 * Which peers a sync dials in one round of reads, and when it tries again one that did not answer
 * or is no member. Pure: peers are keys, the clock is passed in.
 *
 * The candidates are every peer in the book and every holder the tracker's directory lists, and
 * anyone can list itself at a tracker (or fill the book through discovery) as often as it likes.
 * Dialled all at once, every round, 10,000 listed addresses were 10,000 sockets and 10,000 read
 * buffers each 10 s. So:
 * - a round dials at most MAX_SYNC_PEERS peers: the ones the user named, the peers that proved
 *   the key to us since (`watchedBy`, at most OPEN_PLACES), the members we read before (all but
 *   OPEN_PLACES places), then, at random, the rest: members beyond those places, the book (LAN,
 *   discovery, inbound) and the tracker's holders; duplicates once. At random, not in the
 *   directory's order: anyone registers at a tracker, and 64 holders of names that sort first
 *   took every place of every round (hostile review 56); nor can members read first keep every
 *   place (in an open folder anyone is one).
 * - at most DIALS_AT_ONCE of them at once, the named and known ones first; the plan is made from
 *   those, and the drawn ones (mostly nobody, when a tracker is flooded) are dialled after it and
 *   change it only if they answer as members (readers.ts). News from a member waits for the
 *   first part only: 64 silent addresses made every round, and the news behind it, 4x longer.
 * - a peer that did not answer is skipped for RETRY_FIRST_MS, doubled at each further failure up
 *   to RETRY_MAX_MS (a named neighbour: NAMED_RETRY_MAX_MS at most); one that answered as no
 *   member (no proof of the key, a plain `serve`, an older swarm) for NOT_MEMBER_MS. A peer that
 *   reads our index has proved the key to us: it is dialled at once again (`cleared`).
 * - what is remembered is bounded (MAX_REMEMBERED: the expired go first, then the oldest).
 */

/** Peers dialled in one round of reads, at most. */
export const MAX_SYNC_PEERS = 64;
/** Places of a round that members read before cannot take: drawn at random from everyone else. */
export const OPEN_PLACES = 16;
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
/** Peers whose failures are remembered, at most (more than a tracker lists: 10,000; fewer let 10,000 junk holders be dialled again before their time). */
export const MAX_REMEMBERED = 16_384;

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
 * The peers of one round (see the header): `first` tiers in order, then `members` up to all but
 * `open` places, then the rest drawn at random from `others` (members beyond, book, tracker).
 * `known`: how many of `peers` come from `first` and `members` (the rest were drawn). `more`: some
 * that could be dialled now were left for a later round.
 */
export function planRound<T>(
  o: { first: readonly (readonly T[])[]; members: readonly T[]; others: readonly (readonly T[])[] },
  keyOf: (p: T) => string,
  waiting: (key: string) => boolean,
  max = MAX_SYNC_PEERS,
  open = OPEN_PLACES,
  random: () => number = Math.random,
): { peers: T[]; known: number; more: boolean } {
  const out: T[] = [];
  const seen = new Set<string>();
  const take = (tier: readonly T[], limit: number) => {
    for (const p of tier) {
      if (out.length >= limit) return;
      const k = keyOf(p);
      if (seen.has(k)) continue;
      seen.add(k);
      if (!waiting(k)) out.push(p);
    }
  };
  for (const tier of o.first) take(tier, max);
  take(o.members, max - open);
  const known = out.length;
  const pool: T[] = [];
  for (const tier of [o.members, ...o.others]) {
    for (const p of tier) {
      const k = keyOf(p);
      if (seen.has(k)) continue;
      seen.add(k);
      if (!waiting(k)) pool.push(p);
    }
  }
  const room = Math.max(0, Math.min(max - out.length, pool.length));
  for (let i = 0; i < room; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    out.push(pool[i]!);
  }
  return { peers: out, known, more: pool.length > room };
}

/** Rounds of reads `swarm sync --once` runs at most (64 peers each: 1,024 dialled). */
export const ONCE_ROUNDS = 16;
/** Peers that read us and wait to be read back, at most (the newest kept). */
export const MAX_PROVEN = 64;

/**
 * One sync's rounds of dials: the backoff, the peers the user named, the peers that read our index
 * and wait to be read back (the next round's first places), and whether the last round left any.
 */
export class DialRounds<T> {
  readonly backoff = new DialBackoff();
  private named = new Set<string>();
  private readonly proven = new Map<string, T>();
  /** The last round left peers that could be dialled for a later one (`swarm sync --once` goes on). */
  more = false;
  /**
   * Peers dialled by this `--once` (null: none running): each once. Without it a round that took
   * longer than a backoff (16 peers that say hello and then nothing hold a wave 15 s) found the
   * first ones dialable again: `more` stayed true and 100 such addresses were dialled 5 times each.
   */
  private once: Set<string> | null = null;

  constructor(private readonly keyOf: (p: T) => string) {}

  /**
   * `swarm sync --once`, which has no later round: rounds of `pull` while some peers were left for
   * a later one, each peer dialled at most once, ONCE_ROUNDS at most.
   */
  async everyPeer(pull: () => Promise<void>, stopped: () => boolean): Promise<void> {
    this.once = new Set();
    try {
      for (let i = 0; i < ONCE_ROUNDS && !stopped(); i++) {
        await pull();
        if (!this.more) break;
      }
    } finally {
      this.once = null;
    }
  }

  isNamed(key: string): boolean {
    return this.named.has(key);
  }

  /** `p` read our index (it proved the key, when keyed): dialled at once, and first in the next round unless read already. */
  readUs(p: T, readAlready: boolean): void {
    const k = this.keyOf(p);
    this.backoff.cleared(k);
    this.proven.delete(k);
    if (!readAlready) this.proven.set(k, p);
    if (this.proven.size > MAX_PROVEN) this.proven.delete(this.proven.keys().next().value!);
  }

  /** `key` is being read now: true when it had read us (it proved the key, when keyed). */
  reading(key: string): boolean {
    return this.proven.delete(key);
  }

  /** The peers of a round from the book (`named`: given by the user), the members read before and the tracker's holders: the known ones, then the drawn ones. */
  plan(book: readonly { addr: T; named: boolean }[], members: readonly T[], listed: readonly T[], skip: (key: string) => boolean, now = Date.now()): { known: T[]; drawn: T[] } {
    const named = book.filter((b) => b.named).map((b) => b.addr);
    this.named = new Set(named.map(this.keyOf));
    const r = planRound({ first: [named, [...this.proven.values()].reverse().slice(0, OPEN_PLACES)], members, others: [book.map((b) => b.addr), listed] }, this.keyOf, (k) => skip(k) || this.backoff.waiting(k, now) || !!this.once?.has(k));
    for (const p of r.peers) this.once?.add(this.keyOf(p));
    this.more = r.more;
    return { known: r.peers.slice(0, r.known), drawn: r.peers.slice(r.known) };
  }
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
