/**
 * What the coordinator keeps per peer and per request, and the estimates it derives from them:
 * mean rate, when a peer will deliver a chunk it holds (its place in the queue over its rate),
 * requests made redundant in the endgame, and the public view of a peer for progress output.
 * Pure functions over plain records.
 */
import { availableParallelism } from 'node:os';
import { MIN_PIPELINE_CHUNKS, type PeerStats } from '../scheduling/peer-stats.js';
import type { PeerHost } from './peer-host.js';
import type { PeerView } from './events.js';

export interface Req {
  id: number;
  peer: Peer;
  /** Chunks asked for and not yet delivered, in the order the peer sends them. */
  pending: Set<number>;
  lastChunkAt: number;
}

export interface Peer {
  id: number;
  address: string;
  host: PeerHost;
  stats: PeerStats;
  /** connecting: until its hello arrives (no request goes to a peer that has not said hello). */
  state: 'connecting' | 'active' | 'dropped';
  /** Chunks requested and not yet delivered or given up. */
  inflight: number;
  /** Open requests, in the order they were sent (which is the order the peer serves them). */
  requests: Map<number, Req>;
  /** When its TCP connection was established (0: not yet): the hello is due within a deadline. */
  tcpAt: number;
  /** True once the peer said hello: it speaks our protocol. */
  everConnected: boolean;
  /** Chunks and packets from it that failed their hash or checksum. */
  badData: number;
  /** Bytes of packets that answered live requests, and bytes of packets that answered nothing. */
  usefulBytes: number;
  junkBytes: number;
  /** When the first request was sent (0: not yet). */
  firstRequestAt: number;
  /** Why the peer was dropped, when it was for misbehaving. */
  droppedFor: 'bad-data' | null;
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
export function averageRate(peers: Peer[]): number {
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

/** Seconds until `holder` delivers `chunk`; Infinity for a peer that is gone or has no rate yet. */
export function etaOf(holder: Peer | undefined, chunk: number, chunkBytes: number): number {
  if (!holder || holder.state !== 'active') return Infinity;
  let ahead = 0;
  for (const r of holder.requests.values()) {
    for (const c of r.pending) {
      ahead++;
      if (c === chunk) return holder.stats.rate > 0 ? (ahead * chunkBytes) / holder.stats.rate : Infinity;
    }
  }
  return 0;
}

/** Open requests all of whose pending chunks are already verified (fetched from someone else). */
export function redundantRequests(peers: Peer[], isVerified: (chunk: number) => boolean): Req[] {
  const out: Req[] = [];
  for (const p of peers) {
    for (const r of p.requests.values()) {
      if (r.pending.size === 0) continue;
      let redundant = true;
      for (const c of r.pending) {
        if (!isVerified(c)) {
          redundant = false;
          break;
        }
      }
      if (redundant) out.push(r);
    }
  }
  return out;
}

export function peerView(p: Peer): PeerView {
  return { address: p.address, state: p.state, rate: p.stats.rate, chunks: p.stats.chunksVerified, inflight: p.inflight, strikes: p.stats.strikes };
}
