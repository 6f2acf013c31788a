/**
 * The spreads of one server: for each complete content several peers download from us at once,
 * which chunks each of them has been shown (scheduling/spread.ts: a seeder shows each downloader a
 * few chunks at a time, so its upload goes to distinct chunks and the downloaders trade). The
 * sessions report interest, `have`s and chunks sent; newly shown chunks go out to their peers as
 * `have` messages through the `show` callback each session registers.
 */
import { Spread } from '../scheduling/spread.js';
import { chunksOf } from '../manifest.js';
import type { ChunkSource } from './source.js';

export type Show = (cid: string, chunks: number[]) => void;

export class Spreads {
  private readonly byCid = new Map<string, Spread>();
  private readonly shows = new Map<number, Show>();
  private readonly joined = new Map<number, Set<string>>();

  constructor(private readonly random: () => number = Math.random) {}

  /** `session` is interested in `source`'s content, holding `has`: the chunks it may see. */
  join(session: number, source: ChunkSource, has: Uint8Array | undefined, show: Show): Uint8Array {
    const cid = source.manifest.cid;
    if (!source.complete) return source.bitfield(); // a partial holder shows what it has
    let s = this.byCid.get(cid);
    if (!s) this.byCid.set(cid, (s = new Spread(chunksOf(source.manifest), this.random)));
    this.shows.set(session, show);
    let mine = this.joined.get(session);
    if (!mine) this.joined.set(session, (mine = new Set()));
    mine.add(cid);
    return s.join(session, has);
  }

  /** `session`'s peer has these chunks now. */
  had(session: number, cid: string, chunks: number[]): void {
    const s = this.byCid.get(cid);
    if (!s || !this.joined.get(session)?.has(cid)) return;
    const shown: number[] = [];
    for (const c of chunks) shown.push(...s.had(session, c));
    if (shown.length) this.shows.get(session)?.(cid, shown);
  }

  /** We finished sending chunk `chunk` of `cid` to `session`. */
  sent(session: number, cid: string, chunk: number): void {
    const s = this.byCid.get(cid);
    if (!s) return;
    for (const [other, chunks] of s.sentTo(session, chunk)) this.shows.get(other)?.(cid, chunks);
  }

  leave(session: number): void {
    for (const cid of this.joined.get(session) ?? []) {
      const s = this.byCid.get(cid);
      s?.leave(session);
      // a content nobody watches any more starts afresh next time (counted per content: walking
      // every content and session on each leave was O(contents × sessions))
      if (s && s.size === 0) this.byCid.delete(cid);
    }
    this.joined.delete(session);
    this.shows.delete(session);
  }
}
