/**
 * The coordinator of one download (main thread). Glue between the pure scheduling layer, the
 * peer hosts (threads owning connections) and the chunk pool (hash + write).
 *
 *   ChunkTable (from the ticket) ─► pump(): per peer, pickRange up to its pipeline, capped by
 *          ▲                        its rate-proportional share of the ByteBudget
 *          │                                 │ get {from,to}
 *          │                                 ▼
 *   ticket.mark ◄─ pool.verifyAndWrite ◄── 'chunk' (buffer transferred) ◄── peer host threads
 *          │        bad hash: strike, chunk back to missing     'strike' / 'done' / 'closed'
 *          ▼
 *   table.complete: run() resolves; get.ts finishes the part file (fsync, rename, mtime)
 *
 * Endgame: once nothing is missing, an idle peer duplicates the chunk its holder would deliver
 * last, and requests made redundant are cancelled. A chunk has at most two holders, so an idle
 * peer that has delivered verified chunks takes back a duplicate that a peer with nothing to show
 * (or a much slower one) has sat on for RECLAIM_AFTER_MS: two stalling peers cannot hold a chunk
 * between them. A timer (TICK_MS) updates rates, drops stalled peers, times out requests and
 * emits progress snapshots.
 *
 * Trust: a peer gets requests only after its hello; a connection that never says hello, or a peer
 * that delivers no useful byte within firstChunkMs of its first request, is set aside. A peer
 * dropped after sending only data that failed its hash (however it left: strikes or hanging up)
 * counts as dropped for bad data: when every peer went that way, the download fails with exit 5.
 */
import { EventEmitter } from 'node:events';
import { ERROR_CODES, SwarmError, asSwarmError, fromWire, isIntegrityCode, type WireError } from '../errors.js';
import { chunkLength } from '../chunking.js';
import { ChunkTable } from '../scheduling/chunk-table.js';
import { PeerStats } from '../scheduling/peer-stats.js';
import { ByteBudget } from '../scheduling/budget.js';
import { ENDGAME_MARGIN, pickRange } from '../scheduling/picker.js';
import type { ChunkPool } from '../pool.js';
import type { PartFile } from '../storage/part-file.js';
import type { Ticket } from '../storage/ticket.js';
import type { PeerAddress } from '../types.js';
import { chunksOf, expectedHash, type Manifest } from '../manifest.js';
import type { FromPeerHost } from './thread-messages.js';
import type { PeerHostGroup } from './peer-host.js';
import { averageRate, budgetShares, etaOf, peerView, redundantRequests, type Peer, type Req } from './peer-state.js';
export { defaultPeerThreads } from './peer-state.js';
import type { CoordinatorEvents, PeerView } from './events.js';

const TICK_MS = 250;
/** Junk (bytes of packets for no live request) that earns a strike, if it also exceeds the useful bytes. */
const JUNK_STRIKE_BYTES = 8 << 20;
/** An endgame duplicate with no chunk for this long may be taken back for a peer that delivers. */
export const RECLAIM_AFTER_MS = 1_000;

export interface CoordinatorOptions {
  pool: ChunkPool;
  part: PartFile;
  ticket: Ticket;
  budgetBytes: number;
  /** The threads (or inline host) that own the peer connections. */
  hosts: PeerHostGroup;
  /** A peer with requests out and no byte for this long is dropped. */
  stallMs: number;
  /** A request with no chunk delivered for this long is cancelled and its chunks requeued. */
  requestTimeoutMs: number;
  /**
   * A peer that sends no useful byte within this long of its first request is set aside; so is a
   * connection that does not say hello within this long.
   */
  firstChunkMs: number;
  /** Aborts the run (Ctrl-C): settles with the signal's reason. */
  signal?: AbortSignal;
}

export class Coordinator extends EventEmitter<CoordinatorEvents> {
  private readonly table: ChunkTable;
  private readonly budget: ByteBudget;
  private readonly peers: Peer[] = [];
  private readonly owner: Int32Array;
  private readonly requests = new Map<number, Req>();
  private readonly writes = new Set<Promise<void>>();
  private nextReq = 1;
  private timer: NodeJS.Timeout | null = null;
  private settle: { resolve: () => void; reject: (e: SwarmError) => void } | null = null;
  private finished = false;
  readonly counters = { badPackets: 0, badChunks: 0, fetchedChunks: 0, bytesFetched: 0, duplicateChunks: 0 };
  /** Pool time spent hashing and writing, milliseconds (for the breakdown). */
  readonly poolTimes = { hashMs: 0, writeMs: 0 };
  readonly resumedChunks: number;

  constructor(private readonly m: Manifest, private readonly holders: PeerAddress[], private readonly o: CoordinatorOptions) {
    super();
    const chunks = chunksOf(m);
    this.table = new ChunkTable(chunks, (i) => o.ticket.has(i));
    this.resumedChunks = this.table.verified;
    this.budget = new ByteBudget(o.budgetBytes);
    this.owner = new Int32Array(chunks).fill(-1);
  }

  get verifiedBytes(): number {
    let n = 0;
    for (let i = 0; i < this.table.count; i++) if (this.table.isVerified(i)) n += chunkLength(this.m.size, this.m.chunkBytes, i);
    return n;
  }

  /** Fetch every missing chunk. Resolves when all are verified on disk. */
  run(): Promise<void> {
    if (this.table.complete) return Promise.resolve();
    const signal = this.o.signal;
    if (signal?.aborted) return Promise.reject(asSwarmError(signal.reason));
    signal?.addEventListener('abort', () => this.fail(asSwarmError(signal.reason)), { once: true });
    this.o.ticket.failWith((e) => this.fail(e));
    this.o.hosts.bind(
      (msg) => this.onHostMessage(msg),
      (err) => this.fail(err),
    );
    const hosts = this.o.hosts.hosts;
    const now = Date.now();
    this.holders.forEach((h, i) => {
      const host = hosts[i % hosts.length]!;
      const address = h.ip.includes(':') ? `[${h.ip}]:${h.port}` : `${h.ip}:${h.port}`;
      const p: Peer = { id: i, address, host, stats: new PeerStats(now), state: 'connecting', inflight: 0, requests: new Map(), tcpAt: 0, everConnected: false, badData: 0, junkBytes: 0, usefulBytes: 0, firstRequestAt: 0, droppedFor: null };
      this.peers.push(p);
      host.send({ type: 'connect', peerId: i, host: h.ip, port: h.port });
    });
    this.timer = setInterval(() => this.tick(), TICK_MS);
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  /** Stop now (Ctrl-C): running writes finish and are recorded; nothing else is fetched. */
  abort(reason: SwarmError): void {
    this.fail(reason);
  }

  private fail(err: SwarmError): void {
    if (this.finished) return;
    this.finished = true;
    this.stop();
    this.settle?.reject(err);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Wait for chunk writes already handed to the pool (their chunks are then in the ticket). */
  async drainWrites(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  /** Timings of the peer threads (before closing them). */
  async hostStats(): Promise<{ threads: number; busyMs: number; copyMs: number; checksumMs: number; inline: boolean }> {
    const all = await Promise.all(this.o.hosts.hosts.map((h) => h.stats()));
    const out = { threads: 0, busyMs: 0, copyMs: 0, checksumMs: 0, inline: this.o.hosts.inline };
    for (const s of all) {
      if (!s) continue;
      if (!out.inline) out.threads++;
      out.busyMs += s.busyMs;
      out.copyMs += s.copyMs;
      out.checksumMs += s.checksumMs;
    }
    return out;
  }

  async closeHosts(): Promise<void> {
    await this.o.hosts.close();
  }

  peersUsed(): number {
    return this.peers.filter((p) => p.stats.chunksVerified > 0).length;
  }

  peersDropped(): number {
    return this.peers.filter((p) => p.state === 'dropped' && p.everConnected).length;
  }

  private onHostMessage(msg: FromPeerHost): void {
    if (this.finished && msg.type !== 'chunk') return;
    const p = this.peers[msg.peerId];
    if (!p) return;
    const now = Date.now();
    switch (msg.type) {
      case 'connected':
        // TCP only: requests wait for the peer's hello (a listener that never speaks gets none)
        p.tcpAt = now;
        break;
      case 'bytes': {
        const useful = msg.n - msg.junk;
        if (useful > 0) p.stats.onBytes(useful, now);
        p.usefulBytes += useful;
        p.junkBytes += msg.junk;
        this.counters.bytesFetched += msg.n;
        if (p.junkBytes > JUNK_STRIKE_BYTES && p.junkBytes > p.usefulBytes) {
          p.junkBytes = 0;
          this.strike(p, { code: ERROR_CODES.BAD_PACKET, message: `sent ${JUNK_STRIKE_BYTES >> 20} MiB of data nobody asked for` });
        }
        break;
      }
      case 'hello':
        if (p.state === 'connecting') {
          p.state = 'active';
          p.everConnected = true;
          p.stats = new PeerStats(now);
        }
        break;
      case 'chunk':
        this.onChunk(p, msg.reqId, msg.chunk, msg.bytes, msg.length, now);
        break;
      case 'strike':
        this.counters.badPackets++;
        if (isIntegrityCode(msg.error.code)) p.badData++;
        this.releaseFromRequest(msg.reqId, msg.chunk);
        this.strike(p, msg.error);
        break;
      case 'done': {
        const r = this.requests.get(msg.reqId);
        const undelivered = r ? r.pending.size : 0;
        if (r) this.endRequest(r);
        if (msg.error) this.onRequestError(p, msg.error);
        else if (undelivered > 0) this.strike(p, { code: ERROR_CODES.BAD_MESSAGE, message: `said a request was done with ${undelivered} chunk(s) not sent` });
        break;
      }
      case 'closed':
        if (p.state !== 'dropped') {
          const why = msg.error ? fromWire(msg.error).message : 'connection closed';
          this.drop(p, p.everConnected ? why : `could not connect: ${why}`, msg.error?.code ?? ERROR_CODES.PEER_CLOSED);
        }
        break;
    }
    this.pump();
  }

  private onChunk(p: Peer, reqId: number, chunk: number, bytes: Uint8Array, length: number, now: number): void {
    const r = this.requests.get(reqId);
    if (!r || !r.pending.delete(chunk)) {
      // a chunk of a request we already gave up on (timed out, peer dropped): nothing to account
      p.host.send({ type: 'buffer', bytes }, [bytes.buffer as ArrayBuffer]);
      return;
    }
    r.lastChunkAt = now;
    p.inflight--;
    if (r.pending.size === 0) this.endRequest(r);
    if (this.table.isVerified(chunk) || this.finished) {
      this.counters.duplicateChunks++;
      this.table.release(chunk);
      this.budget.give(this.m.chunkBytes);
      p.host.send({ type: 'buffer', bytes }, [bytes.buffer as ArrayBuffer]);
      return;
    }
    this.table.received(chunk);
    const w: Promise<void> = this.o.pool
      .verifyAndWrite({ fd: this.o.part.fd, position: chunk * this.m.chunkBytes, bytes, length, expected: expectedHash(this.m, chunk) })
      .then(
        (res) => {
          this.writes.delete(w);
          this.poolTimes.hashMs += res.hashMs;
          this.poolTimes.writeMs += res.writeMs;
          this.budget.give(this.m.chunkBytes);
          if (res.ok) {
            if (this.table.verify(chunk)) {
              this.o.part.wrote(length);
              this.o.ticket.mark(chunk);
              p.stats.onVerified(length, Date.now());
              this.counters.fetchedChunks++;
              if (this.table.ownersOf(chunk) > 0) this.cancelRedundant();
            }
          } else {
            this.counters.badChunks++;
            p.badData++;
            this.table.release(chunk);
            this.strike(p, { code: ERROR_CODES.HASH_MISMATCH, message: `chunk ${chunk} does not match its hash` });
          }
          p.host.send({ type: 'buffer', bytes: res.bytes }, [res.bytes.buffer as ArrayBuffer]);
          if (this.table.complete && !this.finished) {
            this.finished = true;
            this.stop();
            this.settle?.resolve();
          } else {
            this.pump();
            this.failIfStuck();
          }
        },
        (err: unknown) => {
          this.writes.delete(w);
          this.fail(asSwarmError(err));
        },
      );
    this.writes.add(w);
  }

  private releaseFromRequest(reqId: number, chunk: number): void {
    const r = this.requests.get(reqId);
    if (!r || chunk < 0 || !r.pending.delete(chunk)) return;
    r.peer.inflight--;
    this.table.release(chunk);
    this.budget.give(this.m.chunkBytes);
    if (r.pending.size === 0) this.endRequest(r);
  }

  /** Forget a request; chunks it never delivered go back to missing. */
  private endRequest(r: Req): void {
    this.requests.delete(r.id);
    r.peer.requests.delete(r.id);
    for (const c of r.pending) {
      this.table.release(c);
      this.budget.give(this.m.chunkBytes);
      r.peer.inflight--;
    }
    r.pending.clear();
  }

  private onRequestError(p: Peer, e: WireError): void {
    if (e.code === ERROR_CODES.FILE_CHANGED || e.code === ERROR_CODES.NOT_FOUND || e.code === ERROR_CODES.PATH_ESCAPE) {
      this.drop(p, `no longer has this content: ${e.message}`, e.code);
    } else this.strike(p, e);
  }

  private strike(p: Peer, e: WireError): void {
    if (p.state === 'dropped') return;
    this.emit('warning', { peer: p.address, code: e.code, message: e.message });
    if (p.stats.strike()) {
      p.droppedFor = 'bad-data';
      this.drop(p, `too much bad data (${p.stats.strikes} strikes; last: ${e.message})`, e.code);
    }
  }

  private drop(p: Peer, reason: string, code: string): void {
    if (p.state === 'dropped') return;
    p.state = 'dropped';
    // a peer that sent only bad data and then hung up (or stalled) lied all the same
    if (p.badData > 0 && p.stats.chunksVerified === 0) p.droppedFor = 'bad-data';
    for (const r of [...p.requests.values()]) this.endRequest(r);
    p.host.send({ type: 'close', peerId: p.id });
    this.emit('peer-dropped', { peer: p.address, reason, code });
    this.failIfStuck();
  }

  /**
   * Every peer is gone and no write can still complete the file: give up, keeping the ticket. When
   * every peer that connected was dropped for bad data, that is an integrity failure (exit 5), not
   * a lack of peers.
   */
  private failIfStuck(): void {
    if (this.finished || this.table.complete || this.writes.size > 0) return;
    if (!this.peers.every((x) => x.state === 'dropped')) return;
    const missing = this.table.count - this.table.verified;
    const resume = `${missing} of ${this.table.count} chunks missing; the ticket is kept: run the same command again to resume`;
    const connected = this.peers.filter((x) => x.everConnected);
    if (connected.length > 0 && connected.every((x) => x.droppedFor === 'bad-data')) {
      this.fail(new SwarmError(ERROR_CODES.HASH_MISMATCH, `every holder was dropped for sending bad data (${resume})`));
      return;
    }
    this.fail(new SwarmError(ERROR_CODES.NO_PEERS, `no peer left to fetch from (${resume})`));
  }

  private pump(): void {
    if (this.finished) return;
    const active = this.peers.filter((p) => p.state === 'active').sort((a, b) => b.stats.rate - a.stats.rate);
    const cb = this.m.chunkBytes;
    const shares = budgetShares(active, Math.floor(this.budget.limit / cb));
    const now = Date.now();
    for (const p of active) {
      const target = Math.min(p.stats.pipelineChunks(cb), shares.get(p)!);
      let room = target - p.inflight;
      let reclaimed = false;
      while (room > 0) {
        const pick = pickRange({
          table: this.table,
          room,
          maxRun: Math.max(1, Math.ceil(target / 2)),
          ownChunkSeconds: cb / Math.max(p.stats.rate || averageRate(this.peers), 1),
          holderEta: (i) => etaOf(this.peers[this.owner[i]!], i, cb),
          idle: p.inflight === 0,
        });
        if (!pick) {
          if (!reclaimed && p.inflight === 0 && this.reclaimFor(p, now)) {
            reclaimed = true;
            continue;
          }
          break;
        }
        const fit = Math.floor(this.budget.free / cb);
        const n = Math.min(pick.end - pick.start, this.budget.inFlight === 0 ? Math.max(1, fit) : fit);
        if (n <= 0) return; // budget full: wait for writes
        this.budget.tryTake(n * cb);
        const end = pick.start + n;
        this.table.assign(pick.start, end);
        const r: Req = { id: this.nextReq++, peer: p, pending: new Set(), lastChunkAt: Date.now() };
        for (let c = pick.start; c < end; c++) {
          r.pending.add(c);
          if (!pick.duplicate) this.owner[c] = p.id;
        }
        this.requests.set(r.id, r);
        p.requests.set(r.id, r);
        p.inflight += n;
        room -= n;
        if (!p.firstRequestAt) p.firstRequestAt = Date.now();
        p.host.send({ type: 'get', peerId: p.id, reqId: r.id, cid: this.m.cid, from: pick.start, to: end, size: this.m.size, chunkBytes: cb });
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
    let best: Req | null = null;
    for (const r of this.requests.values()) {
      const q = r.peer;
      if (q === p || r.pending.size === 0 || now - r.lastChunkAt < RECLAIM_AFTER_MS) continue;
      if (q.stats.chunksVerified > 0 && q.stats.rate * ENDGAME_MARGIN >= p.stats.rate) continue;
      let duplicate = true;
      for (const c of r.pending) {
        if (this.owner[c] === q.id || this.table.isVerified(c)) {
          duplicate = false;
          break;
        }
      }
      if (duplicate && (!best || r.lastChunkAt < best.lastChunkAt)) best = r;
    }
    if (!best) return false;
    best.peer.host.send({ type: 'cancel', peerId: best.peer.id, reqId: best.id });
    this.endRequest(best);
    return true;
  }

  /** In the endgame, cancel requests whose every pending chunk has arrived from someone else. */
  private cancelRedundant(): void {
    for (const r of redundantRequests(this.peers, (c) => this.table.isVerified(c))) {
      r.peer.host.send({ type: 'cancel', peerId: r.peer.id, reqId: r.id });
      this.endRequest(r);
    }
  }

  private tick(): void {
    const now = Date.now();
    for (const p of this.peers) {
      if (p.state === 'connecting' && p.tcpAt && now - p.tcpAt > this.o.firstChunkMs) {
        this.drop(p, `connected but said nothing (no hello) within ${(this.o.firstChunkMs / 1000).toFixed(1)} s`, ERROR_CODES.PEER_TIMEOUT);
        continue;
      }
      if (p.state !== 'active') continue;
      p.stats.tick(now);
      if (p.usefulBytes === 0 && p.firstRequestAt && now - p.firstRequestAt > this.o.firstChunkMs) {
        this.drop(p, `sent nothing within ${(this.o.firstChunkMs / 1000).toFixed(1)} s of its first request`, ERROR_CODES.PEER_TIMEOUT);
        continue;
      }
      if (p.inflight > 0 && p.stats.stalledFor(now) > this.o.stallMs) {
        this.drop(p, `stalled: no data for ${(p.stats.stalledFor(now) / 1000).toFixed(1)} s`, ERROR_CODES.PEER_TIMEOUT);
        continue;
      }
      for (const r of [...p.requests.values()]) {
        if (now - r.lastChunkAt > this.o.requestTimeoutMs) {
          p.host.send({ type: 'cancel', peerId: p.id, reqId: r.id });
          this.endRequest(r);
          this.strike(p, { code: ERROR_CODES.PEER_TIMEOUT, message: `request timed out after ${this.o.requestTimeoutMs} ms` });
        }
      }
    }
    this.pump();
    this.emit('snapshot', this.snapshot());
  }

  snapshot(): { verifiedBytes: number; verifiedChunks: number; peers: PeerView[] } {
    return {
      verifiedBytes: this.verifiedBytes,
      verifiedChunks: this.table.verified,
      peers: this.peers.map(peerView),
    };
  }
}
