/**
 * The peers this peer knows (seed 001's List_of_Peers), where each was learnt and when it was
 * last seen: named on the command line (`--neighbor`), announced on the LAN, listed by the
 * tracker, or found by DISCOVER. The overlay floods to the first `maxNeighbors` of them, named
 * ones first; the rest are candidates. Bounded: when full, the peer seen longest ago that was not
 * named by the user makes room. `reset()` is seed 001's RESET: the list is emptied.
 */
import type { PeerAddress } from '../types.js';

/** inbound: a peer that connected to us and takes part in the overlay (links are two-way). */
export type PeerSourceKind = 'neighbor' | 'lan' | 'inbound' | 'tracker' | 'discover';

/**
 * When `k` was last seen itself, for people and scripts (`swarm peers`, the shell's `peers`): 0
 * (never) for a peer only listed, by a tracker or by the user, that never answered us. The
 * book's own `lastSeen` counts a tracker's listing as a sighting (it orders eviction).
 */
export function seenAt(k: { peer?: string; sources: PeerSourceKind[]; lastSeen: number }): number {
  const listedOnly = k.peer === undefined && k.sources.every((s) => s === 'tracker' || s === 'neighbor');
  return listedOnly ? 0 : k.lastSeen;
}

/** Order of preference when choosing neighbours. */
const RANK: Record<PeerSourceKind, number> = { neighbor: 0, lan: 1, discover: 2, inbound: 3, tracker: 4 };
/** Which peers make room first when the book is full (lowest first); named ones never do. */
const EVICT_COST: Record<PeerSourceKind, number> = { inbound: 0, tracker: 1, discover: 2, lan: 3, neighbor: 9 };

export interface KnownPeer {
  ip: string;
  port: number;
  /** Its peer id, once known (a hello, a LAN announcement, a pong). */
  peer?: string;
  sources: PeerSourceKind[];
  /** When it last answered or was heard of (ms); 0: a named neighbour never reached yet. */
  lastSeen: number;
}

export const DEFAULT_MAX_KNOWN = 512;

export const keyOf = (a: PeerAddress): string => `${a.ip}|${a.port}`;

export class PeerBook {
  private readonly known = new Map<string, KnownPeer>();
  /** neighbours() in rank order, kept until the book changes (it is asked for on every forward). */
  private ranked: KnownPeer[] | null = null;
  /** Addresses that are this very peer (never a neighbour of itself). */
  private readonly selves = new Set<string>();

  constructor(private readonly max = DEFAULT_MAX_KNOWN) {}

  /** Addresses that are this peer itself: never added. */
  setSelf(addrs: PeerAddress[]): void {
    this.selves.clear();
    for (const a of addrs) this.selves.add(keyOf(a));
  }

  isSelf(a: PeerAddress): boolean {
    return this.selves.has(keyOf(a));
  }

  /** Note `a` as learnt from `source` (seen now). False when it is us or there is no room. */
  add(a: PeerAddress, source: PeerSourceKind, peer?: string): boolean {
    const key = keyOf(a);
    if (this.selves.has(key)) return false;
    const now = Date.now();
    let k = this.known.get(key);
    if (!k) {
      if (this.known.size >= this.max && !this.makeRoom()) return false;
      // a peer named by the user has not been seen until it answers
      k = { ip: a.ip, port: a.port, sources: [], lastSeen: source === 'neighbor' ? 0 : now };
      this.known.set(key, k);
      this.ranked = null;
    }
    if (!k.sources.includes(source)) {
      k.sources.push(source);
      this.ranked = null;
    }
    if (source !== 'neighbor') k.lastSeen = now;
    if (peer) k.peer = peer;
    return true;
  }

  /** Forget that `a` came from `source`; forgotten altogether when no source is left. */
  remove(a: PeerAddress, source: PeerSourceKind): void {
    const key = keyOf(a);
    const k = this.known.get(key);
    if (!k) return;
    k.sources = k.sources.filter((s) => s !== source);
    if (k.sources.length === 0) this.known.delete(key);
    this.ranked = null;
  }

  /** Seen now (it answered). */
  touch(a: PeerAddress, peer?: string): void {
    const k = this.known.get(keyOf(a));
    if (!k) return;
    k.lastSeen = Date.now();
    if (peer && k.peer !== peer) {
      k.peer = peer;
      this.ranked = null;
    }
  }

  has(a: PeerAddress): boolean {
    return this.known.has(keyOf(a));
  }

  get size(): number {
    return this.known.size;
  }

  /** Seed 001's RESET: forget every peer. */
  reset(): number {
    const n = this.known.size;
    this.known.clear();
    this.ranked = null;
    return n;
  }

  /** Every known peer, by address (a stable order). */
  list(): KnownPeer[] {
    return [...this.known.values()].sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1)).map((k) => ({ ...k, sources: [...k.sources] }));
  }

  /**
   * The peers to flood to: named ones first, then LAN, DISCOVER, inbound, tracker; within each, the order
   * they were learnt in (kept until the book changes: this is asked on every forward).
   */
  neighbours(max: number): KnownPeer[] {
    const rank = (k: KnownPeer) => Math.min(...k.sources.map((s) => RANK[s]));
    // within a rank, peers that answered (their peer id is known) before ones that never did
    this.ranked ??= [...this.known.values()].sort((a, b) => rank(a) - rank(b) || (a.peer ? 0 : 1) - (b.peer ? 0 : 1));
    // peers that only connected to us take at most half the places while others are known:
    // connections alone cannot take over where our searches go
    const out: KnownPeer[] = [];
    const later: KnownPeer[] = [];
    let inbound = 0;
    for (const k of this.ranked) {
      if (out.length >= max) break;
      const onlyInbound = rank(k) === RANK.inbound;
      if (onlyInbound && inbound >= Math.ceil(max / 2)) {
        later.push(k);
        continue;
      }
      if (onlyInbound) inbound++;
      out.push(k);
    }
    for (const k of later) {
      if (out.length >= max) break;
      out.push(k);
    }
    return out;
  }

  /**
   * Make room: drop a peer the user did not name, the most easily replaced first (one that
   * connected to us, then one the tracker or DISCOVER told of, a LAN peer last), the one seen
   * longest ago among those. False when every one was named.
   */
  private makeRoom(): boolean {
    const cost = (k: KnownPeer) => Math.max(...k.sources.map((s) => EVICT_COST[s]));
    let victim: [string, KnownPeer] | null = null;
    for (const e of this.known) {
      if (e[1].sources.includes('neighbor')) continue;
      if (!victim || cost(e[1]) < cost(victim[1]) || (cost(e[1]) === cost(victim[1]) && e[1].lastSeen < victim[1].lastSeen)) victim = e;
    }
    if (!victim) return false;
    this.known.delete(victim[0]);
    this.ranked = null;
    return true;
  }
}
