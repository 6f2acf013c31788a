/**
 * What the peers fetching from us have, per content: their `interest` bitfields and `have`s,
 * counted per chunk (an Availability per content id). The upload policy reads the count as the
 * chunk's rarity among the peers it serves: a chunk few of them have goes out before one most of
 * them have (upload-slots.ts). Pure bookkeeping: sessions are numbers.
 *
 * Only a session that has taken a chunk of the content from us counts: until it acknowledges one
 * we sent it (`have` for it), its bitfield waits aside. Idle connections that only claim chunks
 * (sybils) decided the order for everyone otherwise (hostile review: 40 of them made an honest
 * download 2x slower), and a `get` alone was not enough either: one followed at once by a
 * `cancel` costs a sybil nothing (hostile re-check).
 *
 * Bounded by what the server allows: contents are only those we serve, one per `interest` the
 * session accepted (at most 64 per connection), one bitfield per session and content, dropped
 * when the session ends.
 */
import { Availability, bitSet } from './availability.js';

export class RequesterChunks {
  private readonly byCid = new Map<string, Availability>();
  /** Per session, the contents it counts in (it took a chunk of them). */
  private readonly active = new Map<number, Set<string>>();
  /** Per session, the bitfields of contents it is interested in and has not taken a chunk of yet. */
  private readonly waiting = new Map<number, Map<string, Uint8Array>>();
  /** Sessions counted per content (the content's counts go with its last one). */
  private readonly members = new Map<string, number>();

  /** `session` is interested in `cid` (`chunks` long), holding `bits` (none: nothing yet); it counts once it takes a chunk. */
  join(session: number, cid: string, chunks: number, bits: Uint8Array | undefined): void {
    if (this.active.get(session)?.has(cid)) return;
    const own = new Uint8Array(Math.ceil(chunks / 8));
    if (bits) own.set(bits.subarray(0, own.length));
    let w = this.waiting.get(session);
    if (!w) this.waiting.set(session, (w = new Map()));
    w.set(cid, own);
  }

  /** `session` acknowledged a chunk of `cid` we sent it: from now on what it has counts. */
  asked(session: number, cid: string, chunks: number): void {
    const w = this.waiting.get(session);
    const bits = w?.get(cid);
    if (!bits) return;
    w!.delete(cid);
    if (w!.size === 0) this.waiting.delete(session);
    let a = this.byCid.get(cid);
    if (!a) this.byCid.set(cid, (a = new Availability(chunks)));
    if (a.chunkCount !== chunks) return; // one id, one manifest: ids are hashes of manifests
    a.setPeer(session, bits);
    let mine = this.active.get(session);
    if (!mine) this.active.set(session, (mine = new Set()));
    mine.add(cid);
    this.members.set(cid, (this.members.get(cid) ?? 0) + 1);
  }

  /** `session` has these chunks of `cid` now. */
  had(session: number, cid: string, chunks: readonly number[]): void {
    const bits = this.waiting.get(session)?.get(cid);
    if (bits) {
      for (const c of chunks) if (Number.isInteger(c) && c >= 0 && c < bits.length * 8 && !bitSet(bits, c)) bits[c >> 3]! |= 1 << (c & 7);
      return;
    }
    const a = this.byCid.get(cid);
    if (!a || !a.known(session)) return;
    for (const c of chunks) a.have(session, c);
  }

  /** The session ended. */
  leave(session: number): void {
    this.waiting.delete(session);
    const mine = this.active.get(session);
    if (!mine) return;
    this.active.delete(session);
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

  /** Sessions known (counted, or interested and not counted yet). */
  sessions(): number {
    return new Set([...this.active.keys(), ...this.waiting.keys()]).size;
  }

  /** The most contents one session is known for (counted or waiting). */
  maxContentsPerSession(): number {
    let most = 0;
    for (const s of new Set([...this.active.keys(), ...this.waiting.keys()])) most = Math.max(most, (this.active.get(s)?.size ?? 0) + (this.waiting.get(s)?.size ?? 0));
    return most;
  }

  /** Contents with counts kept. */
  contents(): number {
    return this.byCid.size;
  }

  /** How many of our requesters (that took a chunk) have chunk `chunk` of `cid` (0 for a content none counts in). */
  holders(cid: string, chunk: number): number {
    const a = this.byCid.get(cid);
    return a && chunk >= 0 && chunk < a.chunkCount ? a.counts[chunk]! : 0;
  }
}
