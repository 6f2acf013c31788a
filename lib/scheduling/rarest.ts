/**
 * What to ask one peer for next, among the chunks it has: rarest first. Pure: the chunk table,
 * availability counts, the peer's bitfield and a random source come in; a range comes out.
 *
 * - The very first chunks of a download (`randomOrder`) are picked at random, rarity ignored, so
 *   a newcomer has something to share at once and newcomers do not all chase the same chunk.
 * - Then: among the missing chunks this peer has, the fewest holders win; ties are broken at
 *   random (every peer of a flash crowd asking the seeder for different chunks), and the run is
 *   extended forward over chunks that are just as rare (sequential reads for the holder, fewer
 *   requests), up to `maxRun` and `room`.
 * - Endgame (every chunk left is in flight, and this peer is idle): duplicate the chunk, among
 *   those it has, whose holders would deliver it last (the soonest of them), if this peer would
 *   clearly be sooner (WebTorrent's hotswap, libtorrent's endgame). Two peers hold a chunk at
 *   most, unless every holder has been on it for `stuckSeconds` (a holder's estimate grows with
 *   the time its chunk has taken): then one more, each time. "Helpful" liars that proved fast on
 *   other chunks and dribble the rare one took both places for a request timeout each while its
 *   real holder waited (hostile review). Not before:
 *   in a swarm of partial holders a peer often has nothing we lack long before the end, and
 *   duplicating then cost a flash crowd ~15% of its bytes (cancelled halves of chunks).
 */
import type { ChunkTable } from './chunk-table.js';
import { ENDGAME_MARGIN } from './picker.js';

export interface RarestContext {
  table: ChunkTable;
  /** Holders per chunk (Availability.counts). */
  counts: Uint16Array;
  /** True when this peer has chunk i. */
  peerHas: (i: number) => boolean;
  /** Chunks this peer may still take. */
  room: number;
  maxRun: number;
  /** Uniform in [0, 1). */
  random: () => number;
  /** Pick at random instead of rarest (the first few chunks of a download). */
  randomOrder: boolean;
  /** True when this peer has nothing in flight (endgame duplicates only go to idle peers). */
  idle: boolean;
  /** Seconds this peer needs for one chunk (Infinity: it never duplicates). */
  ownChunkSeconds: number;
  /** Seconds until the soonest peer holding chunk i delivers it (Infinity when all look stalled). */
  holderEta: (chunk: number) => number;
  /** A chunk every holder has been on this long may be asked of one more peer (beyond MAX_HOLDERS). */
  stuckSeconds: number;
}

/** Peers a chunk is asked of at once in the endgame, unless all of them are stuck on it. */
export const MAX_HOLDERS = 2;

export type RarestPick = { start: number; end: number; duplicate: boolean } | null;

export function pickRarest(ctx: RarestContext): RarestPick {
  if (ctx.room <= 0) return null;
  const { table, counts, peerHas } = ctx;
  const n = table.count;
  // one pass: the rarest count among candidates, and a uniformly random candidate at it
  let best = Infinity;
  let chosen = -1;
  let ties = 0;
  for (let i = table.firstMaybeMissing(); i < n; i++) {
    if (!table.isMissing(i) || !peerHas(i)) continue;
    const c = ctx.randomOrder ? 0 : counts[i]!;
    if (c < best) {
      best = c;
      chosen = i;
      ties = 1;
    } else if (c === best && ctx.random() * ++ties < 1) {
      chosen = i; // reservoir sampling: each tie kept with probability 1/ties
    }
  }
  if (chosen >= 0) {
    const limit = Math.min(ctx.room, ctx.maxRun);
    let end = chosen + 1;
    while (end < n && end - chosen < limit && table.isMissing(end) && peerHas(end) && (ctx.randomOrder || counts[end]! <= best)) end++;
    return { start: chosen, end, duplicate: false };
  }
  // Duplicates only in the true endgame: every chunk left is in flight. Before that, a peer with
  // nothing we lack serves others; duplicating there wasted ~15% of a flash crowd's bytes.
  if (!ctx.idle || table.missing > 0) return null;
  let dup = -1;
  let dupEta = 0;
  for (const i of table.assignedToFewer(255)) {
    if (!peerHas(i)) continue;
    const eta = ctx.holderEta(i);
    if (table.ownersOf(i) >= MAX_HOLDERS && eta < ctx.stuckSeconds) continue;
    if (eta > dupEta) {
      dup = i;
      dupEta = eta;
    }
  }
  // never with no estimate of its own: a stalled holder (Infinity) and a peer that has shown
  // nothing (Infinity) are not a race, and idle liars took turns on a rare chunk that way
  if (dup < 0 || !Number.isFinite(ctx.ownChunkSeconds) || dupEta < ctx.ownChunkSeconds * ENDGAME_MARGIN) return null;
  return { start: dup, end: dup + 1, duplicate: true };
}
