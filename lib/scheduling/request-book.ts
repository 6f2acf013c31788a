/**
 * The request book of one download: every request out (which peer, which chunks still pending,
 * in the order the peer sends them), who holds each chunk, how many chunks each peer has in
 * flight, and the byte budget they take. Pure: no I/O, the clock is passed in.
 *
 *   open(peer, run)    ─► table.assign, budget.take, owners
 *   delivered(req, c)  ─► the chunk left the peer (its budget stays taken until it is written)
 *   failed(req, c)     ─► the chunk goes back to missing, budget returned
 *   end(req)           ─► chunks never delivered go back to missing, budget returned
 *
 * It answers the questions the coordinator's policy needs: a peer's chunks in flight, when a
 * holder will deliver a chunk (its place in the holder's queue over the holder's rate), requests
 * that timed out, and requests made redundant in the endgame.
 */
import type { ChunkTable } from './chunk-table.js';
import type { ByteBudget } from './budget.js';

export interface BookRequest {
  id: number;
  peer: number;
  /** Chunks asked for and not yet delivered, in the order the peer sends them. */
  pending: Set<number>;
  /** Chunks of this request that arrived. */
  delivered: number;
  sentAt: number;
  /** Last time a chunk of it arrived (or when it was sent). */
  lastChunkAt: number;
  duplicate: boolean;
  /** When the peer said it waits for an upload slot (`busy`) before sending any of it; 0: not waiting. */
  waitingSince: number;
  /** Bytes of it arrived: it left the peer's queue. */
  started: boolean;
  /** It was moved here from a peer that kept it waiting (it is not moved again). */
  moved: boolean;
}

export class RequestBook {
  private readonly requests = new Map<number, BookRequest>();
  private readonly byPeer = new Map<number, Map<number, BookRequest>>();
  private readonly inflightOf = new Map<number, number>();
  /** The first (non-duplicate) holder of each chunk, -1 when none. */
  private readonly owner: Int32Array;
  private nextId = 1;

  constructor(
    private readonly table: ChunkTable,
    private readonly budget: ByteBudget,
    private readonly chunkBytes: number,
  ) {
    this.owner = new Int32Array(table.count).fill(-1);
  }

  get size(): number {
    return this.requests.size;
  }

  get(id: number): BookRequest | undefined {
    return this.requests.get(id);
  }

  inflight(peer: number): number {
    return this.inflightOf.get(peer) ?? 0;
  }

  /** Every open request, in the order they were made. */
  all(): IterableIterator<BookRequest> {
    return this.requests.values();
  }

  requestsOf(peer: number): IterableIterator<BookRequest> {
    return (this.byPeer.get(peer) ?? new Map<number, BookRequest>()).values();
  }

  ownerOf(chunk: number): number {
    return this.owner[chunk]!;
  }

  private addInflight(peer: number, n: number): void {
    this.inflightOf.set(peer, this.inflight(peer) + n);
  }

  /** Ask `peer` for chunks [start, end). The budget must have room (see ByteBudget.tryTake). */
  open(peer: number, start: number, end: number, duplicate: boolean, now: number): BookRequest {
    this.budget.tryTake((end - start) * this.chunkBytes);
    this.table.assign(start, end);
    const r: BookRequest = { id: this.nextId++, peer, pending: new Set(), delivered: 0, sentAt: now, lastChunkAt: now, duplicate, waitingSince: 0, started: false, moved: false };
    for (let c = start; c < end; c++) {
      r.pending.add(c);
      if (!duplicate) this.owner[c] = peer;
    }
    this.requests.set(r.id, r);
    let mine = this.byPeer.get(peer);
    if (!mine) this.byPeer.set(peer, (mine = new Map()));
    mine.set(r.id, r);
    this.addInflight(peer, end - start);
    return r;
  }

  /**
   * Chunk `c` of request `id` arrived. Returns the request, or null when it was not pending (a
   * request given up on, or a chunk it never asked for). The chunk's budget stays taken until
   * the caller has written it (`budget.give`).
   */
  delivered(id: number, c: number, now: number): BookRequest | null {
    const r = this.requests.get(id);
    if (!r || !r.pending.delete(c)) return null;
    r.delivered++;
    r.lastChunkAt = now;
    this.addInflight(r.peer, -1);
    if (r.pending.size === 0) this.forget(r);
    return r;
  }

  /** The peer said request `id` waits for an upload slot (`busy`). */
  waiting(id: number, now: number): void {
    const r = this.requests.get(id);
    if (r && !r.started && r.waitingSince === 0) r.waitingSince = now;
  }

  /** Bytes of request `id` arrived: it is no longer waiting in the peer's queue. */
  started(id: number): void {
    const r = this.requests.get(id);
    if (!r) return;
    r.started = true;
    r.waitingSince = 0;
  }

  /**
   * Requests that have waited in their peer's queue for at least `ms`: one the peer said waits
   * (`busy`, no byte of it yet), and every later one to that peer not started either (a peer
   * serves a connection's requests in order: they wait behind it). Chunks another holder may
   * send sooner.
   */
  *waitingLonger(now: number, ms: number): Generator<BookRequest> {
    for (const mine of this.byPeer.values()) {
      let behind = false;
      for (const r of mine.values()) {
        if (r.started || r.delivered > 0) continue;
        if (!behind && r.waitingSince > 0 && now - r.waitingSince >= ms) behind = true;
        if (behind) yield r;
      }
    }
  }

  /** Chunk `c` of request `id` failed on the way (bad packet): back to missing. */
  failed(id: number, c: number): boolean {
    const r = this.requests.get(id);
    if (!r || !r.pending.delete(c)) return false;
    this.addInflight(r.peer, -1);
    this.table.release(c);
    this.budget.give(this.chunkBytes);
    if (r.pending.size === 0) this.forget(r);
    return true;
  }

  /** The request is over: chunks it never delivered go back to missing. Returns how many. */
  end(id: number): number {
    const r = this.requests.get(id);
    if (!r) return 0;
    const n = r.pending.size;
    for (const c of r.pending) {
      this.table.release(c);
      this.budget.give(this.chunkBytes);
    }
    this.addInflight(r.peer, -n);
    r.pending.clear();
    this.forget(r);
    return n;
  }

  /** End every request of a peer (dropped, choked). */
  endPeer(peer: number): void {
    for (const r of [...this.requestsOf(peer)]) this.end(r.id);
  }

  private forget(r: BookRequest): void {
    this.requests.delete(r.id);
    this.byPeer.get(r.peer)?.delete(r.id);
  }

  /** Requests with no chunk delivered for `ms`. */
  timedOut(now: number, ms: number): BookRequest[] {
    const out: BookRequest[] = [];
    for (const r of this.requests.values()) if (now - r.lastChunkAt > ms) out.push(r);
    return out;
  }

  /** Open requests all of whose pending chunks are already verified (fetched from someone else). */
  redundant(): BookRequest[] {
    const out: BookRequest[] = [];
    for (const r of this.requests.values()) {
      if (r.pending.size === 0) continue;
      let all = true;
      for (const c of r.pending) {
        if (!this.table.isVerified(c)) {
          all = false;
          break;
        }
      }
      if (all) out.push(r);
    }
    return out;
  }

  /**
   * Seconds until `peer` delivers `chunk` at `rate` bytes/s: its place in the peer's queue. With
   * `now`, the chunk at the head of the queue is taken to need at least as long again as it has
   * taken so far (since the request's last chunk, or since it was sent): a peer that proved fast
   * on other chunks and dribbles this one is not trusted to deliver it in one chunk's time, so an
   * idle holder may take a duplicate (hostile review: "helpful" liars held the rare chunk a
   * request timeout each while their rate made them look seconds away).
   */
  eta(peer: number, chunk: number, rate: number, now?: number): number {
    if (rate <= 0) return this.has(peer, chunk) ? Infinity : 0;
    const per = this.chunkBytes / rate;
    let ahead = 0;
    let head = per;
    for (const r of this.requestsOf(peer)) {
      for (const c of r.pending) {
        if (ahead++ === 0 && now !== undefined) head = Math.max(per, (now - r.lastChunkAt) / 1000);
        if (c === chunk) return head + (ahead - 1) * per;
      }
    }
    return 0;
  }

  /** Some request has sent bytes and then no chunk for longer than `ms` (its head chunk is overdue). */
  overdue(now: number, ms: number): boolean {
    for (const r of this.requests.values()) if (r.started && r.pending.size > 0 && now - r.lastChunkAt > ms) return true;
    return false;
  }

  private has(peer: number, chunk: number): boolean {
    for (const r of this.requestsOf(peer)) if (r.pending.has(chunk)) return true;
    return false;
  }
}
