/**
 * What to ask whom, next: the request side of a download's coordinator. Per active peer (fastest
 * first), pickRarest (scheduling/rarest.ts) among the chunks that peer has, up to its pipeline and
 * its rate share of the byte budget; a busy peer is topped up only when a quarter of its pipeline
 * is free. In the endgame an idle peer that delivers may take back a duplicate request that a
 * slow or silent peer sits on; requests whose every chunk arrived from someone else are
 * cancelled. The state lives in the pure units (ChunkTable, Availability, RequestBook,
 * ByteBudget) that the coordinator owns and passes in.
 */
import { ENDGAME_MARGIN } from '../scheduling/picker.js';
import { pickRarest } from '../scheduling/rarest.js';
import type { RequestBook, BookRequest } from '../scheduling/request-book.js';
import type { ChunkTable } from '../scheduling/chunk-table.js';
import type { ByteBudget } from '../scheduling/budget.js';
import type { Availability } from '../scheduling/availability.js';
import type { Manifest } from '../manifest.js';
import { budgetShares, chunkSeconds, type Peer } from './peer-state.js';

/** An endgame duplicate with no chunk for this long may be taken back for a peer that delivers. */
export const RECLAIM_AFTER_MS = 1_000;
/**
 * A request that has waited this long in its peer's queue (the peer said `busy`, and no byte of
 * it came) moves to another holder of its chunks that has room. A seeder serves the chunks it
 * has given out least first, so a request for a chunk it already sent to someone else could wait
 * there for most of a flash crowd (measured: asked at 0.7 s, sent at 8.6 s) while other peers
 * had it and were idle. 300 ms rather than a second: the last chunks of a flash crowd spread in
 * under a second, and a request queued behind them waited out most of it (A/B, N = 8, 7 runs
 * each: median 7.50 s against 7.81 s all done).
 */
export const MOVE_WAITING_AFTER_MS = 300;
/** The first chunks are picked at random (something to share at once), then rarest first. */
export const RANDOM_FIRST_CHUNKS = 4;
/** A peer with requests in flight is sent more once this many chunks fit (a quarter of its pipeline). */
export const refillAt = (target: number): number => Math.max(1, Math.floor(target / 4));

/**
 * `p` is about to be asked for chunks. Its first request starts the first-chunk deadline; an idle
 * peer's progress window runs again (the time it had nothing to send us is not held against its
 * rate: scheduling/progress.ts).
 */
function asking(p: Peer, idle: boolean, now: number): void {
  if (!p.firstRequestAt) p.firstRequestAt = now;
  if (idle) p.stats.asked(now);
}

export interface PlannerState {
  m: Manifest;
  table: ChunkTable;
  budget: ByteBudget;
  book: RequestBook;
  availability: Availability;
  peers: ReadonlyMap<number, Peer>;
  random: () => number;
  /** In the endgame, a chunk every holder has been on this long is asked of one more peer (the first-chunk deadline). */
  stuckMs: number;
  /** Chunks verified before this run (a resumed download): the random first picks are counted after them. */
  resumedChunks: number;
}

export class RequestPlanner {
  constructor(private readonly c: PlannerState) {}

  /** Seconds until the soonest of the peers asked for `chunk` delivers it (Infinity: none looks like it will). */
  private etaOf(chunk: number): number {
    const now = Date.now();
    let best = Infinity;
    for (const r of this.c.book.all()) {
      if (!r.pending.has(chunk)) continue;
      const q = this.c.peers.get(r.peer);
      if (!q || q.state !== 'active') continue;
      best = Math.min(best, this.c.book.eta(q.id, chunk, q.stats.rate, now));
    }
    return best;
  }

  /** Send every active peer what it should fetch next (the caller checks the download runs). */
  pump(): void {
    const active = [...this.c.peers.values()].filter((p) => p.state === 'active').sort((a, b) => b.stats.rate - a.stats.rate);
    const cb = this.c.m.chunkBytes;
    const shares = budgetShares(active, Math.floor(this.c.budget.limit / cb));
    const now = Date.now();
    const randomOrder = this.c.table.verified - this.c.resumedChunks < RANDOM_FIRST_CHUNKS && this.c.table.verified < this.c.table.count / 2;
    for (const p of active) {
      const target = Math.min(p.stats.pipelineChunks(cb), shares.get(p)!);
      let room = target - this.c.book.inflight(p.id);
      // A busy peer is topped up only once a few chunks have room: one request of several
      // chunks instead of one per verified chunk (each `get` is a socket write on both sides;
      // measured in --profile at ~0.2 CPU s/GiB when sent per chunk).
      if (this.c.book.inflight(p.id) > 0 && room < refillAt(target)) continue;
      let reclaimed = false;
      while (room > 0) {
        const idle = this.c.book.inflight(p.id) === 0;
        // nothing to pick from p the last time, and since then no chunk went back to missing and p
        // announced none: still nothing, without a scan of the table (one per idle peer and pump
        // turn cost 6-10% of a flash crowd downloader's CPU). Not in the endgame, whose picks
        // depend on the clock.
        const avail = this.c.availability.versionOf(p.id);
        const reopened = this.c.table.reopened;
        const known = this.c.table.missing > 0 && p.nothingAt !== null && p.nothingAt.avail === avail && p.nothingAt.reopened === reopened;
        const pick = known ? null : pickRarest({
          table: this.c.table,
          counts: this.c.availability.counts,
          peerHas: (i) => this.c.availability.has(p.id, i),
          room,
          maxRun: Math.max(1, Math.ceil(target / 2)),
          random: this.c.random,
          randomOrder,
          idle,
          ownChunkSeconds: chunkSeconds(p, cb, this.c.peers.values()),
          holderEta: (i) => this.etaOf(i),
          stuckSeconds: this.c.stuckMs / 1000,
        });
        if (!pick) {
          if (!known) p.nothingAt = this.c.table.missing > 0 ? { avail, reopened } : null;
          if (!reclaimed && idle && this.reclaimFor(p, now)) {
            reclaimed = true;
            continue;
          }
          break;
        }
        const fit = Math.floor(this.c.budget.free / cb);
        const n = Math.min(pick.end - pick.start, this.c.budget.inFlight === 0 ? Math.max(1, fit) : fit);
        if (n <= 0) return; // budget full: wait for writes
        asking(p, idle, now);
        const r = this.c.book.open(p.id, pick.start, pick.start + n, pick.duplicate, now);
        room -= n;
        p.host.send({ type: 'get', peerId: p.id, reqId: r.id, cid: this.c.m.cid, from: pick.start, to: pick.start + n, size: this.c.m.size, chunkBytes: cb });
      }
    }
  }

  /**
   * Endgame, `p` idle with nothing to pick: every chunk left has its two holders. Cancel one
   * duplicate request (a chunk's second holder, never its first, whose place in the picker's
   * estimates is kept) that has delivered nothing for RECLAIM_AFTER_MS and whose peer has no
   * verified chunk or is much slower than `p`, so that `p` can take the chunk. Only a peer with
   * verified chunks reclaims: it has shown it delivers.
   */
  private reclaimFor(p: Peer, now: number): boolean {
    if (p.stats.chunksVerified === 0) return false;
    let best: BookRequest | null = null;
    for (const r of this.c.book.all()) {
      const q = this.c.peers.get(r.peer)!;
      if (q === p || r.pending.size === 0 || now - r.lastChunkAt < RECLAIM_AFTER_MS) continue;
      if (q.stats.chunksVerified > 0 && q.stats.rate * ENDGAME_MARGIN >= p.stats.rate) continue;
      let duplicate = true;
      for (const c of r.pending) {
        if (this.c.book.ownerOf(c) === q.id || this.c.table.isVerified(c) || !this.c.availability.has(p.id, c)) {
          duplicate = false;
          break;
        }
      }
      if (duplicate && (!best || r.lastChunkAt < best.lastChunkAt)) best = r;
    }
    if (!best) return false;
    this.cancel(best);
    return true;
  }

  /**
   * Requests waiting in a busy peer's queue for MOVE_WAITING_AFTER_MS go to the fastest other
   * active peer that has all their chunks and nothing in flight from us (never a duplicate: the
   * chunks leave the first peer), once. Returns how many moved.
   */
  moveWaiting(now: number): number {
    const cb = this.c.m.chunkBytes;
    let moved = 0;
    for (const r of [...this.c.book.waitingLonger(now, MOVE_WAITING_AFTER_MS)]) {
      if (r.duplicate || r.moved || r.pending.size === 0) continue;
      const chunks = [...r.pending];
      const from = Math.min(...chunks);
      const to = Math.max(...chunks) + 1;
      if (to - from !== chunks.length) continue; // not one run (cannot happen before a delivery)
      let best: Peer | null = null;
      for (const p of this.c.peers.values()) {
        if (p.state !== 'active' || p.id === r.peer) continue;
        // an idle holder that has not queued us lately: one that queues us too would not help
        if (now - p.busyAt < MOVE_WAITING_AFTER_MS || this.c.book.inflight(p.id) > 0) continue;
        if (p.stats.pipelineChunks(cb) < chunks.length || !chunks.every((c) => this.c.availability.has(p.id, c))) continue;
        if (!best || p.stats.rate > best.stats.rate) best = p;
      }
      if (!best) continue;
      this.cancel(r);
      asking(best, true, now); // it was idle (checked above)
      const moved2 = this.c.book.open(best.id, from, to, false, now);
      moved2.moved = true; // once: requests hopping between busy peers lose more than they gain
      best.host.send({ type: 'get', peerId: best.id, reqId: moved2.id, cid: this.c.m.cid, from, to, size: this.c.m.size, chunkBytes: cb });
      moved++;
    }
    return moved;
  }

  /**
   * Some chunk we lack has no proven holder (an active peer that delivered a verified chunk on
   * this connection): no live holder at all, or only ones that delivered nothing yet (liars, maybe).
   * Holders set aside are then dialled again soon (peer-state.ts, Redials).
   */
  needsHolders(): boolean {
    const proven: number[] = [];
    for (const p of this.c.peers.values()) {
      // (no shortcut for a peer that says it is complete: a liar says so too)
      if (p.state !== 'active' || p.stats.chunksVerified === 0) continue;
      proven.push(p.id);
    }
    return this.c.availability.firstUnheld((i) => !this.c.table.isVerified(i), proven) >= 0;
  }

  cancel(r: BookRequest): void {
    this.c.peers.get(r.peer)?.host.send({ type: 'cancel', peerId: r.peer, reqId: r.id });
    this.c.book.end(r.id);
  }

  /** In the endgame, cancel requests whose every pending chunk has arrived from someone else. */
  cancelRedundant(): void {
    for (const r of this.c.book.redundant()) this.cancel(r);
  }
}
