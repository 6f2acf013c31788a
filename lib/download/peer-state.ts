/**
 * What the coordinator keeps per peer, and the pure estimates it derives from those records: mean
 * rate, each peer's share of the byte budget, its chunk time for the endgame, whether it is
 * overdue (silent, stalled, trickling), the public view of a peer for progress output, and the
 * default number of peer threads.
 *
 * A peer's life: connecting (TCP, then its hello) ─► known (hello said; no request until its
 * bitfield says what it has) ─► active ─► dropped. Requests live in the request book
 * (scheduling/request-book.ts); a peer is asked only for chunks its bitfield or `have`s list.
 * A dropped holder may be dialled again (Redials): soon while a chunk we lack has no proven holder.
 */
import { availableParallelism } from 'node:os';
import { MIN_PIPELINE_CHUNKS, type PeerStats } from '../scheduling/peer-stats.js';
import { trickleChunkMs, TRICKLE_GRACE_FIRST_CHUNKS } from '../scheduling/progress.js';
import type { PeerAddress } from '../types.js';
import type { PeerHost } from './peer-host.js';
import type { PeerView } from './events.js';

export interface Peer {
  id: number;
  address: string;
  /** `ip|port` as dialled: the same holder is never dialled twice at once. */
  key: string;
  host: PeerHost;
  stats: PeerStats;
  state: 'connecting' | 'known' | 'active' | 'dropped';
  /** When its TCP connection was established (0: not yet): the hello is due within a deadline. */
  tcpAt: number;
  /** True once the peer said hello: it speaks our protocol. */
  everConnected: boolean;
  /** Its peer id (from hello): a second connection to the same peer, or to ourselves, is closed. */
  remoteId: string | null;
  /** True when its bitfield says it has every chunk. */
  complete: boolean;
  /** Chunks and packets from it that failed their hash or checksum. */
  badData: number;
  /** Strikes it earned only by letting a request time out (slow, not lying). */
  timeouts: number;
  /** Bytes of packets that answered live requests, and bytes of packets that answered nothing. */
  usefulBytes: number;
  junkBytes: number;
  /** When the first request was sent (0: not yet). */
  firstRequestAt: number;
  /** Last time it said a request of ours waits for its upload slots (alive, not stalled). */
  busyAt: number;
  /**
   * Why the peer was dropped, when it was for misbehaving (trickle: sent too slowly to finish a
   * chunk in time; slow: its strikes were all request timeouts).
   */
  droppedFor: 'bad-data' | 'self' | 'duplicate' | 'trickle' | 'slow' | null;
  /**
   * The last search for a missing chunk it has found none, at these versions of its chunks
   * (Availability.versionOf) and of the table (ChunkTable.reopened); null: search (requests.ts).
   */
  nothingAt: { avail: number; reopened: number } | null;
}

/**
 * Why a peer that earned its last strike goes. Every strike a request timeout and no byte of it
 * ever failed a hash or checksum: slow (it may be dialled again later, and a download whose
 * holders were all slow ends with "no peers", exit 4). Anything else: bad data, never dialled
 * again; when every holder went so, exit 5. A slow honest holder was counted as a liar.
 */
export function struckOut(p: Pick<Peer, 'timeouts' | 'badData' | 'stats'>): 'slow' | 'bad-data' {
  return p.badData === 0 && p.timeouts >= p.stats.strikes ? 'slow' : 'bad-data';
}

/**
 * Peer threads: half the cores (at least one), never more than peers. Measured on 2 cores with 4
 * local peers (bench/get.ts): 1 peer thread + 2 pool threads 1.27 s/GiB, everything inline
 * 1.38 s, 2 + 2 threads 1.44 s: receiving is cheap enough that one thread serves many peers,
 * and the cores are better left to hashing, writing and the kernel.
 */
export function defaultPeerThreads(peers: number): number {
  return Math.max(1, Math.min(peers, Math.floor(availableParallelism() / 2)));
}

/**
 * Each active peer's share of the budget, in chunks: proportional to its rate (equal while
 * rates are unknown), never below MIN_PIPELINE_CHUNKS. Without shares the fastest peer takes
 * whatever the budget frees, the others measure slower, get less, and end up idle.
 */
export function budgetShares(active: Peer[], budgetChunks: number): Map<Peer, number> {
  const total = active.reduce((a, p) => a + p.stats.rate, 0);
  const out = new Map<Peer, number>();
  for (const p of active) {
    const share = total > 0 && p.stats.rate > 0 ? (budgetChunks * p.stats.rate) / total : budgetChunks / Math.max(1, active.length);
    out.set(p, Math.max(MIN_PIPELINE_CHUNKS, Math.floor(share)));
  }
  return out;
}

/** Mean rate of active peers that have one (a stand-in for peers not yet measured). */
export function averageRate(peers: Iterable<Peer>): number {
  let sum = 0;
  let n = 0;
  for (const p of peers) {
    if (p.state === 'active' && p.stats.rate > 0) {
      sum += p.stats.rate;
      n++;
    }
  }
  return n ? sum / n : 0;
}

/**
 * Seconds `p` needs for one chunk, as the endgame weighs it against a holder's delivery: at its
 * rate; unmeasured, at the others' mean rate if it was never asked (a newcomer gets the benefit of
 * the doubt), else never: asked before and no chunk verified, it has shown nothing (as reclaiming
 * needs a verified chunk, requests.ts). Otherwise idle liars take the endgame's second place on a
 * rare chunk each in turn, ahead of its real holder dialled again (hostile review: trickles).
 */
export function chunkSeconds(p: Peer, chunkBytes: number, peers: Iterable<Peer>): number {
  if (p.stats.rate > 0) return chunkBytes / p.stats.rate;
  if (p.firstRequestAt && p.stats.chunksVerified === 0) return Infinity;
  return chunkBytes / Math.max(averageRate(peers), 1);
}

export function peerView(p: Peer, inflight: number): PeerView {
  const state = p.state === 'known' ? 'connecting' : p.state;
  return { address: p.address, state, rate: p.stats.rate, chunks: p.stats.chunksVerified, inflight, strikes: p.stats.strikes, complete: p.complete };
}

export interface Deadlines {
  firstChunkMs: number;
  stallMs: number;
  requestTimeoutMs: number;
}

/**
 * A peer's clocks at a tick of the coordinator: its rate window closes, its trickle clock stops
 * while nothing is asked of it (scheduling/progress.ts). Returns why it is to be set aside, if it
 * is (overdue, below); a trickler is marked so (`droppedFor`: it is not dialled again soon).
 */
export function tickPeer(p: Peer, now: number, inflight: number, o: Deadlines, chunkBytes: number): string | null {
  if (p.state === 'active') p.stats.tick(now);
  if (inflight === 0) p.stats.idle(now);
  const late = overdue(p, now, inflight, o, chunkBytes);
  if (late?.trickle) p.droppedFor = 'trickle';
  return late?.reason ?? null;
}

/**
 * Why a peer should be dropped for being late, or null: connected but no hello, or hello but no
 * bitfield, within `firstChunkMs`; no useful byte within `firstChunkMs` of its first request
 * (a `busy` answer counts as alive); requests out and no byte for `stallMs`; requests out and,
 * over a window of TRICKLE_GRACE_FIRST_CHUNKS first-chunk deadlines, bytes too slow to finish a
 * chunk within TRICKLE_MARGIN request timeouts (`trickle`: scheduling/progress.ts).
 */
export function overdue(p: Peer, now: number, inflight: number, o: Deadlines, chunkBytes: number): { reason: string; trickle: boolean } | null {
  const late = (reason: string) => ({ reason, trickle: false });
  const deadline = (o.firstChunkMs / 1000).toFixed(1);
  if (p.state === 'connecting') return p.tcpAt && now - p.tcpAt > o.firstChunkMs ? late(`connected but said nothing (no hello) within ${deadline} s`) : null;
  if (p.state === 'known') return now - p.stats.lastByteAt > o.firstChunkMs ? late(`did not say which chunks it has within ${deadline} s`) : null;
  if (p.state !== 'active') return null;
  const alive = Math.max(p.busyAt, p.firstRequestAt);
  if (p.usefulBytes === 0 && p.firstRequestAt && now - alive > o.firstChunkMs) return late(`sent nothing within ${deadline} s of its first request`);
  if (inflight > 0 && now - Math.max(p.stats.lastByteAt, p.busyAt) > o.stallMs) return late(`stalled: no data for ${((now - p.stats.lastByteAt) / 1000).toFixed(1)} s`);
  const w = p.stats.progress;
  const chunkMs = inflight > 0 ? trickleChunkMs(w, now, { graceMs: TRICKLE_GRACE_FIRST_CHUNKS * o.firstChunkMs, requestTimeoutMs: o.requestTimeoutMs, chunkBytes }) : null;
  if (chunkMs === null) return null;
  const s = (ms: number) => (ms / 1000).toFixed(1);
  return { reason: `trickling: ${w.bytes} bytes in ${s(now - w.since)} s, a chunk would take ${Number.isFinite(chunkMs) ? s(chunkMs) : 'forever'} s (request timeout ${s(o.requestTimeoutMs)} s)`, trickle: true };
}

/** A holder dropped (not for bad data) may be dialled again after this long. */
export const REDIAL_AFTER_MS = 30_000;
/** A holder that refused us for being full may be dialled again after this long, this many times. */
export const BUSY_REDIAL_MS = 3_000;
export const BUSY_REDIALS = 3;

interface Gone {
  at: number;
  bad: boolean;
  busy: number;
  /** Set aside for trickling, or as a second connection to a live peer: sooner would not help. */
  slow: boolean;
  /** Times in a row it was dropped without a chunk verified from it (the soon redial backs off). */
  misses: number;
  /** Named by the user or the tracker, or it delivered a verified chunk: worth dialling again soon. */
  vouched: boolean;
}

/** A vouched holder is dialled again soon at most this many times in a row without a verified chunk. */
export const SOON_REDIALS = 3;
/** Addresses remembered at most (dropped holders, and ones the user or the tracker named); the oldest go first. */
export const MAX_REMEMBERED = 4_096;

/**
 * Holders that were dropped, by dialled address: one dropped for bad data (or found to be
 * ourselves) is never dialled again; one that refused us for being full is tried again soon, a
 * few times; any other after REDIAL_AFTER_MS, or, while we may lack a holder (`needed`: a chunk
 * we lack has no proven holder, or a request for one failed lately: RequestPlanner.needsHolders),
 * after `soonMs` (the first-chunk deadline) doubled at each miss in a row, SOON_REDIALS times.
 * The sole real holder of a chunk, set aside for a slow first answer, is then back within seconds,
 * beside the liars that claim the chunk too, instead of never (a holder given with --peer was
 * dialled again only once every peer was gone). Only vouched holders come back soon: ones the
 * user named, the tracker listed, or that delivered a verified chunk. An address a peer only
 * mentioned (peer exchange) is dialled when it is mentioned, as before: otherwise one `peers`
 * message of dead addresses made every downloader dial them again twice a minute (hostile
 * review). One set aside for trickling, or a second connection to a live peer, waits
 * REDIAL_AFTER_MS all the same: sooner, it would only hold the chunk again.
 */
export class Redials {
  private readonly gone = new Map<string, Gone>();
  /** Addresses the user or the tracker named. */
  private readonly named = new Set<string>();
  /** We may lack a holder (the coordinator sets it each tick). */
  needed = false;

  constructor(private readonly soonMs: number) {}

  /** `key` came from the user or the tracker (not only from another peer). */
  vouch(key: string): void {
    this.named.delete(key); // (re-inserted: the newest)
    this.named.add(key);
    if (this.named.size > MAX_REMEMBERED) this.named.delete(this.named.values().next().value!);
  }

  dropped(p: Pick<Peer, 'key' | 'droppedFor' | 'stats'>, now: number, busy: boolean): void {
    const before = this.gone.get(p.key);
    const bad = p.droppedFor === 'bad-data' || p.droppedFor === 'self';
    const slow = p.droppedFor === 'trickle' || p.droppedFor === 'duplicate' || p.droppedFor === 'slow';
    const proven = p.stats.chunksVerified > 0;
    const misses = proven ? 1 : (before?.misses ?? 0) + 1;
    const vouched = proven || before?.vouched === true || this.named.has(p.key);
    this.gone.delete(p.key); // (re-inserted: the newest)
    this.gone.set(p.key, { at: now, bad, busy: busy ? (before?.busy ?? 0) + 1 : 0, slow, misses, vouched });
    // bounded: the oldest entry goes (a liar forgotten after 4,096 newer drops may be dialled again)
    if (this.gone.size > MAX_REMEMBERED) this.gone.delete(this.gone.keys().next().value!);
  }

  mayDial(key: string, now: number, needed = this.needed): boolean {
    const g = this.gone.get(key);
    return !g || (!g.bad && now - g.at >= this.delay(g, needed));
  }

  private delay(g: Gone, needed: boolean): number {
    if (pending(g)) return BUSY_REDIAL_MS;
    if (needed && soon(g)) return Math.min(REDIAL_AFTER_MS, this.soonMs * 2 ** (g.misses - 1));
    return REDIAL_AFTER_MS;
  }

  /** Vouched holders dropped that may be dialled again now (only those: see above). */
  due(now: number, needed = this.needed): PeerAddress[] {
    const out: PeerAddress[] = [];
    for (const [key, g] of this.gone) if (g.vouched && this.mayDial(key, now, needed)) out.push(addressOfKey(key));
    return out;
  }

  /** Some holder only refused us for being full and will be asked again shortly. */
  busyRetryPending(): boolean {
    for (const g of this.gone.values()) if (pending(g)) return true;
    return false;
  }

  /** Some vouched holder will be dialled again soon (while `needed`): a download is not stuck yet. */
  soonRedialPending(): boolean {
    for (const g of this.gone.values()) if (soon(g)) return true;
    return false;
  }
}

const soon = (g: Gone): boolean => g.vouched && !g.bad && !g.slow && g.misses <= SOON_REDIALS;
const pending = (g: { bad: boolean; busy: number }): boolean => !g.bad && g.busy > 0 && g.busy <= BUSY_REDIALS;

/** The address a Peer key (`ip|port`) was made from. */
export function addressOfKey(key: string): PeerAddress {
  const bar = key.lastIndexOf('|');
  return { ip: key.slice(0, bar), port: Number(key.slice(bar + 1)) };
}
