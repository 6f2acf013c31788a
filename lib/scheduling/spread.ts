/**
 * How a complete holder (a seeder) shows a content to several downloaders at once, so that its
 * upload goes to distinct chunks first. Pure: sessions are numbers, randomness is passed in.
 *
 * With one interested peer, everything is shown at once (nothing to spread). With more, each peer
 * is shown only a few chunks at a time (BitTorrent's "super-seeding"): the chunks given out the
 * fewest times, so every peer holds chunks the others lack and they trade among themselves while
 * the seeder sends each chunk about once. A peer is shown a new chunk whenever it has one it was
 * shown (it says `have`, whoever it got it from). Once every chunk has gone out at least once,
 * everything is shown to everyone: the spread has done its job, and from then on a downloader may
 * fetch from the seeder whatever it still lacks.
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
}

/** Chunks shown to a peer ahead of what it has. */
export const SPREAD_WINDOW = 4;

export class Spread {
  private readonly watchers = new Map<number, Watcher>();
  /** Times each chunk was sent in full by this holder. */
  private readonly sent: Uint16Array;
  /** Peers each chunk is currently shown to and not yet had by. */
  private readonly pending: Uint16Array;
  private unsent: number;
  private done = false;

  constructor(
    readonly chunks: number,
    private readonly random: () => number = Math.random,
    readonly window = SPREAD_WINDOW,
  ) {
    this.sent = new Uint16Array(chunks);
    this.pending = new Uint16Array(chunks);
    this.unsent = chunks;
  }

  /** True once every chunk has been sent at least once: everyone sees everything. */
  get finished(): boolean {
    return this.done;
  }

  private static set(bits: Uint8Array, i: number): void {
    bits[i >> 3]! |= 1 << (i & 7);
  }

  /**
   * A peer says it wants this content (`interest`), having `has` already. Returns the chunks it
   * may see (as a bitfield). Spreading starts with the second peer: the first sees everything
   * until another arrives (the chunks it is shown then are what it has been sent so far, plus a
   * window), and later peers see a window.
   */
  join(session: number, has?: Uint8Array): Uint8Array {
    const bytes = Math.ceil(this.chunks / 8);
    const w: Watcher = { shown: new Uint8Array(bytes), has: new Uint8Array(bytes), outstanding: 0, all: false };
    if (has) w.has.set(has.subarray(0, bytes));
    this.watchers.set(session, w);
    if (this.done || this.watchers.size === 1) {
      w.all = true;
      w.shown.fill(0xff);
      return w.shown;
    }
    this.topUp(session, w);
    return w.shown;
  }

  leave(session: number): void {
    const w = this.watchers.get(session);
    if (!w) return;
    this.watchers.delete(session);
    if (!w.all) for (let i = 0; i < this.chunks; i++) if (bitSet(w.shown, i) && !bitSet(w.has, i)) this.pending[i]!--;
  }

  /** `session` has chunk i now. Returns chunks newly shown to it (to announce with `have`). */
  had(session: number, i: number): number[] {
    const w = this.watchers.get(session);
    if (!w || i < 0 || i >= this.chunks || bitSet(w.has, i)) return [];
    Spread.set(w.has, i);
    if (!w.all && bitSet(w.shown, i)) {
      w.outstanding--;
      this.pending[i]!--;
    }
    return w.all ? [] : this.topUp(session, w);
  }

  /**
   * This holder finished sending chunk i to `session`. Returns, per peer, chunks newly shown (when
   * the last unsent chunk went out, everything left is shown to everyone).
   */
  sentTo(session: number, i: number): Map<number, number[]> {
    const out = new Map<number, number[]>();
    if (i < 0 || i >= this.chunks) return out;
    if (this.sent[i]++ === 0) this.unsent--;
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

  /** Show `session` more chunks until its window is full: those sent and shown the fewest times. */
  private topUp(session: number, w: Watcher): number[] {
    const added: number[] = [];
    while (w.outstanding < this.window) {
      let best = -1;
      let bestScore = Infinity;
      let ties = 0;
      for (let i = 0; i < this.chunks; i++) {
        if (bitSet(w.shown, i) || bitSet(w.has, i)) continue;
        const score = this.sent[i]! * 1024 + this.pending[i]!;
        if (score < bestScore) {
          bestScore = score;
          best = i;
          ties = 1;
        } else if (score === bestScore && this.random() * ++ties < 1) best = i;
      }
      if (best < 0) break;
      Spread.set(w.shown, best);
      w.outstanding++;
      this.pending[best]!++;
      added.push(best);
    }
    void session;
    return added;
  }
}

function push(m: Map<number, number[]>, k: number, v: number): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}
