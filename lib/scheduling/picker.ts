/**
 * What to ask a peer for next. Pure: takes the chunk table, the peer's free pipeline and
 * estimates of when other peers will deliver what they hold, returns a range or nothing.
 *
 * - Normal phase: the next run of missing chunks, contiguous (sequential reads on the seeder,
 *   sequential writes here), at most `maxRun` long. Peers get different runs because assigned
 *   chunks are no longer missing.
 * - Endgame (nothing missing, this peer idle): take the chunk whose holder would deliver it
 *   last (its place in the holder's queue over the holder's rate), if this peer would fetch it
 *   clearly sooner. The tail of a long queue moves to idle peers instead of everyone waiting for
 *   it (WebTorrent's hotswap, libtorrent's endgame). At most two peers hold a chunk.
 */
import type { ChunkTable } from './chunk-table.js';

export interface PickContext {
  table: ChunkTable;
  /** Chunks this peer may still take. */
  room: number;
  maxRun: number;
  /** Seconds this peer needs for one chunk (from its rate; a guess if it has none yet). */
  ownChunkSeconds: number;
  /** Seconds until the peer holding chunk i delivers it (Infinity when it looks stalled). */
  holderEta: (chunk: number) => number;
  /** True when this peer has nothing in flight (endgame duplicates only go to idle peers). */
  idle: boolean;
}

export type Pick = { start: number; end: number; duplicate: boolean } | null;

/** A duplicate must save at least this factor of the holder's remaining time. */
export const ENDGAME_MARGIN = 1.5;

export function pickRange(ctx: PickContext): Pick {
  if (ctx.room <= 0) return null;
  const run = ctx.table.nextMissingRun(Math.min(ctx.room, ctx.maxRun));
  if (run) return { ...run, duplicate: false };
  if (!ctx.idle) return null;
  let best = -1;
  let bestEta = 0;
  for (const i of ctx.table.assignedSingly()) {
    const eta = ctx.holderEta(i);
    if (eta > bestEta) {
      best = i;
      bestEta = eta;
    }
  }
  if (best < 0 || bestEta < ctx.ownChunkSeconds * ENDGAME_MARGIN) return null;
  return { start: best, end: best + 1, duplicate: true };
}
