/**
 * How a complete holder (a seeder) shows a content to several downloaders at once, so that its
 * upload goes to distinct chunks first. Pure: sessions are numbers, randomness is passed in.
 *
 * With one interested peer, everything is shown at once (nothing to spread), and that first peer
 * keeps seeing everything (it was told so). Each later peer is shown only a few chunks at a time
 * (BitTorrent's "super-seeding"), the least given out first:
 *   1. a fresh chunk (never shown to anyone, never sent; or shown, and had by that peer
 *      without our sending it), in one random order per content;
 *   2. else a chunk shown to others and not sent yet, the one shown first;
 *   3. else a chunk already sent, the one first given out.
 * So every peer holds chunks the others lack and they trade among themselves while the seeder
 * sends each chunk about once. A peer is shown a new chunk whenever it has one it was shown (it
 * says `have`, whoever it got it from). Once every chunk has gone out at least once, everything is
 * shown to everyone: the spread has done its job, and from then on a downloader may fetch from the
 * seeder whatever it still lacks.
 *
 * Cost: a pick never scans the content. Each peer has three cursors that only move forward, over
 * the random order and twice over the list of chunks given out (a chunk enters it once), and a
 * cursor passes a chunk only for good (a chunk given out when passed stays passed even if a claim
 * makes it fresh again: that peer meets it in 2. or 3.). So all of one peer's picks walk at most 3 × chunks steps, amortized O(1)
 * a pick, whatever messages trigger them. The picker used to scan every chunk before each pick: a
 * client answering each `have` the seeder pushed with the same `have` cost 1.8 ms of CPU per
 * 60-byte message at 65,536 chunks (hostile review).
 */
import { bitSet } from './availability.js';

interface Watcher {
  /** Chunks shown to this peer. */
  shown: Uint8Array;
  /** Chunks this peer has (its `have`s, and the bitfield it came with). */
  has: Uint8Array;
  /** Shown and not yet had. */
  outstanding: number;
  all: boolean;
  /** Position in the random order of fresh chunks (1.) that this peer has looked at. */
  freshAt: number;
  /** Position in the given-out list up to which this peer has looked for unsent chunks (2.). */
  unsentAt: number;
  /** ... and for any chunk it may be shown (3.). */
  givenAt: number;
}

/** Chunks shown to a peer ahead of what it has. */
export const SPREAD_WINDOW = 4;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export class Spread {
  private readonly watchers = new Map<number, Watcher>();
  /** Chunks shown to someone or sent: no longer fresh. */
  private readonly given: Uint8Array;
  /** Chunks in givenList (each at most once). */
  private readonly listed: Uint8Array;
  /** Chunks sent in full at least once by this holder. */
  private readonly sentOnce: Uint8Array;
  /** The given-out chunks in the order they were first given out (each once). */
  private readonly givenList: Uint16Array | Uint32Array;
  private givenCount = 0;
  /** The random order of fresh chunks: position k is chunk (start + k × stride) mod chunks. */
  private readonly start: number;
  private readonly stride: number;
  private unsent: number;
  private done = false;
  /** Cursor steps taken by picks (tests prove the per-message work with it). */
  readonly counters = { steps: 0 };

  constructor(
    readonly chunks: number,
    random: () => number = Math.random,
    readonly window = SPREAD_WINDOW,
  ) {
    const bytes = Math.ceil(chunks / 8);
    this.given = new Uint8Array(bytes);
    this.listed = new Uint8Array(bytes);
    this.sentOnce = new Uint8Array(bytes);
    this.givenList = chunks <= 0x10000 ? new Uint16Array(chunks) : new Uint32Array(chunks);
    this.unsent = chunks;
    // a stride coprime with the count visits every chunk once, from a random start: a random
    // order in O(1) memory
    this.start = Math.floor(random() * chunks) % Math.max(1, chunks);
    let stride = 1 + Math.floor(random() * Math.max(1, chunks - 1));
    while (chunks > 1 && gcd(stride, chunks) !== 1) stride = (stride % (chunks - 1)) + 1;
    this.stride = stride;
  }

  /** True once every chunk has been sent at least once: everyone sees everything. */
  get finished(): boolean {
    return this.done;
  }

  /** Peers watching. */
  get size(): number {
    return this.watchers.size;
  }

  private static set(bits: Uint8Array, i: number): void {
    bits[i >> 3]! |= 1 << (i & 7);
  }

  private static clear(bits: Uint8Array, i: number): void {
    bits[i >> 3]! &= ~(1 << (i & 7));
  }

  /**
   * A peer says it wants this content (`interest`), having `has` already. Returns the chunks it
   * may see (as a bitfield): everything for the first peer (and for any once the spread is
   * finished), a window for later ones.
   */
  join(session: number, has?: Uint8Array): Uint8Array {
    const bytes = Math.ceil(this.chunks / 8);
    const w: Watcher = { shown: new Uint8Array(bytes), has: new Uint8Array(bytes), outstanding: 0, all: false, freshAt: 0, unsentAt: 0, givenAt: 0 };
    if (has) w.has.set(has.subarray(0, bytes));
    this.watchers.set(session, w);
    if (this.done || this.watchers.size === 1) {
      w.all = true;
      w.shown.fill(0xff);
      return w.shown;
    }
    this.topUp(w);
    return w.shown;
  }

  leave(session: number): void {
    this.watchers.delete(session);
  }

  /** `session` has chunk i now. Returns chunks newly shown to it (to announce with `have`). */
  had(session: number, i: number): number[] {
    const w = this.watchers.get(session);
    if (!w || i < 0 || i >= this.chunks || bitSet(w.has, i)) return [];
    Spread.set(w.has, i);
    if (w.all) return [];
    if (bitSet(w.shown, i)) {
      w.outstanding--;
      // shown to it and had without our sending it (from another peer, or a claim): fresh again
      // for the others. A peer answering each chunk it is shown with `have`, taking no byte, used
      // the fresh order up, and every later downloader was shown the same chunks in the same
      // order (hostile review); the picker before the cursors kept such chunks fresh too.
      if (!bitSet(this.sentOnce, i)) Spread.clear(this.given, i);
    }
    return this.topUp(w);
  }

  /**
   * This holder finished sending chunk i to `session`. Returns, per peer, chunks newly shown (when
   * the last unsent chunk went out, everything left is shown to everyone).
   */
  sentTo(session: number, i: number): Map<number, number[]> {
    const out = new Map<number, number[]>();
    if (i < 0 || i >= this.chunks) return out;
    if (!bitSet(this.sentOnce, i)) {
      Spread.set(this.sentOnce, i);
      this.unsent--;
      this.giveOut(i);
    }
    const w = this.watchers.get(session);
    if (w && !bitSet(w.has, i)) for (const c of this.had(session, i)) push(out, session, c);
    if (this.unsent === 0 && !this.done) {
      this.done = true;
      for (const [s, x] of this.watchers) {
        if (x.all) continue;
        x.all = true;
        const rest: number[] = [];
        for (let c = 0; c < this.chunks; c++) if (!bitSet(x.shown, c)) rest.push(c);
        x.shown.fill(0xff);
        if (rest.length) out.set(s, [...(out.get(s) ?? []), ...rest]);
      }
    }
    return out;
  }

  /** May `session` be sent chunk i? (A peer is only sent what it was shown.) */
  shown(session: number, i: number): boolean {
    const w = this.watchers.get(session);
    return !w || w.all || bitSet(w.shown, i);
  }

  private giveOut(i: number): void {
    if (bitSet(this.given, i)) return;
    Spread.set(this.given, i);
    // listed once, even when given out again after a claim made it fresh (the list bounds the cursors)
    if (bitSet(this.listed, i)) return;
    Spread.set(this.listed, i);
    this.givenList[this.givenCount++] = i;
  }

  /** Show `w` more chunks until its window is full. */
  private topUp(w: Watcher): number[] {
    const added: number[] = [];
    while (w.outstanding < this.window) {
      const best = this.pick(w);
      if (best < 0) break;
      Spread.set(w.shown, best);
      w.outstanding++;
      this.giveOut(best);
      added.push(best);
    }
    return added;
  }

  /** The next chunk to show `w` (-1: none). Every cursor step passes a chunk `w` never needs again. */
  private pick(w: Watcher): number {
    const seen = (i: number) => bitSet(w.shown, i) || bitSet(w.has, i);
    // 1. fresh: not given out (then not shown to `w` either), not had by `w`
    while (w.freshAt < this.chunks) {
      this.counters.steps++;
      const i = (this.start + w.freshAt++ * this.stride) % this.chunks;
      if (!bitSet(this.given, i) && !bitSet(w.has, i)) return i;
    }
    // 2. shown to others, not sent yet: the one shown first (it may be stuck with a slow peer)
    while (w.unsentAt < this.givenCount) {
      this.counters.steps++;
      const i = this.givenList[w.unsentAt++]!;
      if (!bitSet(this.sentOnce, i) && !seen(i)) return i;
    }
    // 3. any other: every unsent chunk given out is shown to or had by `w` now (2. found none)
    while (w.givenAt < this.givenCount) {
      this.counters.steps++;
      const i = this.givenList[w.givenAt++]!;
      if (!seen(i)) return i;
    }
    return -1;
  }
}

function push(m: Map<number, number[]>, k: number, v: number): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}
