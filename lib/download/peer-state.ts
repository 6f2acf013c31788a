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
