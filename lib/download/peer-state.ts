/**
 * What the coordinator keeps per peer, and the pure estimates it derives from those records: mean
 * rate, each peer's share of the byte budget, the public view of a peer for progress output, and
 * the default number of peer threads.
 *
 * A peer's life: connecting (TCP, then its hello) ─► known (hello said; no request until its
 * bitfield says what it has) ─► active ─► dropped. Requests live in the request book
 * (scheduling/request-book.ts); a peer is asked only for chunks its bitfield or `have`s list.
 */
import { availableParallelism } from 'node:os';
import { MIN_PIPELINE_CHUNKS, type PeerStats } from '../scheduling/peer-stats.js';
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
  /** Bytes of packets that answered live requests, and bytes of packets that answered nothing. */
  usefulBytes: number;
  junkBytes: number;
  /** When the first request was sent (0: not yet). */
  firstRequestAt: number;
  /** Last time it said a request of ours waits for its upload slots (alive, not stalled). */
  busyAt: number;
  /** Why the peer was dropped, when it was for misbehaving. */
  droppedFor: 'bad-data' | 'self' | 'duplicate' | null;
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

export function peerView(p: Peer, inflight: number): PeerView {
  const state = p.state === 'known' ? 'connecting' : p.state;
  return { address: p.address, state, rate: p.stats.rate, chunks: p.stats.chunksVerified, inflight, strikes: p.stats.strikes, complete: p.complete };
}

/**
 * Why a peer should be dropped for being late, or null: connected but no hello, or hello but no
 * bitfield, within `firstChunkMs`; no useful byte within `firstChunkMs` of its first request
 * (a `busy` answer counts as alive); requests out and no byte for `stallMs`.
 */
export function overdue(p: Peer, now: number, inflight: number, o: { firstChunkMs: number; stallMs: number }): string | null {
  const deadline = (o.firstChunkMs / 1000).toFixed(1);
  if (p.state === 'connecting') return p.tcpAt && now - p.tcpAt > o.firstChunkMs ? `connected but said nothing (no hello) within ${deadline} s` : null;
  if (p.state === 'known') return now - p.stats.lastByteAt > o.firstChunkMs ? `did not say which chunks it has within ${deadline} s` : null;
  if (p.state !== 'active') return null;
  const alive = Math.max(p.busyAt, p.firstRequestAt);
  if (p.usefulBytes === 0 && p.firstRequestAt && now - alive > o.firstChunkMs) return `sent nothing within ${deadline} s of its first request`;
  if (inflight > 0 && now - Math.max(p.stats.lastByteAt, p.busyAt) > o.stallMs) return `stalled: no data for ${((now - p.stats.lastByteAt) / 1000).toFixed(1)} s`;
  return null;
}

/** A holder dropped (not for bad data) may be dialled again after this long. */
export const REDIAL_AFTER_MS = 30_000;
/** A holder that refused us for being full may be dialled again after this long, this many times. */
export const BUSY_REDIAL_MS = 3_000;
export const BUSY_REDIALS = 3;

/**
 * Holders that were dropped, by dialled address: one dropped for bad data (or found to be
 * ourselves) is never dialled again; one that refused us for being full is tried again soon, a
 * few times; any other after REDIAL_AFTER_MS.
 */
export class Redials {
  private readonly gone = new Map<string, { at: number; bad: boolean; busy: number }>();

  dropped(key: string, now: number, bad: boolean, busy: boolean): void {
    this.gone.set(key, { at: now, bad, busy: busy ? (this.gone.get(key)?.busy ?? 0) + 1 : 0 });
  }

  mayDial(key: string, now: number): boolean {
    const g = this.gone.get(key);
    return !g || (!g.bad && now - g.at >= (pending(g) ? BUSY_REDIAL_MS : REDIAL_AFTER_MS));
  }

  /** Some holder only refused us for being full and will be asked again shortly. */
  busyRetryPending(): boolean {
    for (const g of this.gone.values()) if (pending(g)) return true;
    return false;
  }
}

const pending = (g: { bad: boolean; busy: number }): boolean => !g.bad && g.busy > 0 && g.busy <= BUSY_REDIALS;
