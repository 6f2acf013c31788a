/**
 * What the peers fetching from us have, per content: their `interest` bitfields and `have`s,
 * counted per chunk (an Availability per content id). The upload policy reads the count as the
 * chunk's rarity among the peers it serves: a chunk few of them have goes out before one most of
 * them have (upload-slots.ts). Pure bookkeeping: sessions are numbers.
 *
 * Bounded by what the server allows: contents are only those we serve (the session checks), one
 * bitfield per session and content, dropped when the session ends.
 */
import { Availability } from './availability.js';

export class RequesterChunks {
  private readonly byCid = new Map<string, Availability>();
  private readonly joined = new Map<number, Set<string>>();
  /** Sessions joined per content (the content's counts go with its last one). */
  private readonly members = new Map<string, number>();

  /** `session` is interested in `cid` (`chunks` long), holding `bits` (none: nothing yet). */
  join(session: number, cid: string, chunks: number, bits: Uint8Array | undefined): void {
    let a = this.byCid.get(cid);
    if (!a) this.byCid.set(cid, (a = new Availability(chunks)));
    if (a.chunkCount !== chunks) return; // another manifest under one id cannot happen: ids are hashes of manifests
    a.setPeer(session, bits ?? new Uint8Array(0));
    let mine = this.joined.get(session);
    if (!mine) this.joined.set(session, (mine = new Set()));
    if (!mine.has(cid)) this.members.set(cid, (this.members.get(cid) ?? 0) + 1);
    mine.add(cid);
  }

  /** `session` has these chunks of `cid` now (ignored for a content it did not join). */
  had(session: number, cid: string, chunks: readonly number[]): void {
    const a = this.byCid.get(cid);
    if (!a || !a.known(session)) return;
    for (const c of chunks) a.have(session, c);
  }

  /** The session ended. */
  leave(session: number): void {
    const mine = this.joined.get(session);
    if (!mine) return;
    this.joined.delete(session);
    for (const cid of mine) {
      this.byCid.get(cid)?.removePeer(session);
      const left = (this.members.get(cid) ?? 1) - 1;
      if (left > 0) this.members.set(cid, left);
      else {
        this.members.delete(cid);
        this.byCid.delete(cid);
      }
    }
  }

  /** How many of our requesters have chunk `chunk` of `cid` (0 for a content none joined). */
  holders(cid: string, chunk: number): number {
    const a = this.byCid.get(cid);
    return a && chunk >= 0 && chunk < a.chunkCount ? a.counts[chunk]! : 0;
  }
}
