/**
 * What to ask a peer for next. Pure: takes the chunk table, the peer's free pipeline and the
 * other peers' rates, returns a range or nothing.
 *
 * - Normal phase: the next run of missing chunks, contiguous (sequential reads on the seeder,
 *   sequential writes here), at most `maxRun` long. Peers get different runs because assigned
 *   chunks are no longer missing.
 * - Endgame (nothing missing, this peer idle): take a chunk still held by exactly one slower
 *   peer, preferring the slowest holder, so the last chunks do not wait on a slow peer
 *   (WebTorrent's hotswap, libtorrent's endgame). At most two peers hold a chunk.
 */
import type { ChunkTable } from './chunk-table.js';

export interface PickContext {
  table: ChunkTable;
  /** Chunks this peer may still take. */
  room: number;
  maxRun: number;
  /** This peer's rate and a way to learn the rate of the peer holding chunk i. */
  rate: number;
  holderRate: (chunk: number) => number;
  /** True when this peer has nothing in flight (endgame duplicates only go to idle peers). */
  idle: boolean;
}

export type Pick = { start: number; end: number; duplicate: boolean } | null;

export function pickRange(ctx: PickContext): Pick {
  if (ctx.room <= 0) return null;
  const run = ctx.table.nextMissingRun(Math.min(ctx.room, ctx.maxRun));
  if (run) return { ...run, duplicate: false };
  if (!ctx.idle) return null;
  let best = -1;
  let bestRate = Infinity;
  for (const i of ctx.table.assignedSingly()) {
    const r = ctx.holderRate(i);
    if (r < bestRate) {
      best = i;
      bestRate = r;
    }
  }
  if (best < 0) return null;
  // only help when the holder is clearly slower (or has not shown any rate yet)
  if (bestRate > 0 && bestRate >= ctx.rate * 0.8) return null;
  return { start: best, end: best + 1, duplicate: true };
}
