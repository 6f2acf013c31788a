/**
 * The bitfield / have side of one serving connection (session.ts). `interest` in a content is
 * answered with its bitfield (a seeder shows each of several downloaders a few chunks at a time:
 * spreads.ts), what the peer holds starts to count in the upload policy's rarity, and the peer
 * hears our newly verified chunks and the content's holders from then on (interests.ts). `have`
 * from the peer names chunks it got: those we sent it are acknowledged (their upload slots freed,
 * its take-account.ts clock restarted), and what it has feeds the rarity and the spreads.
 */
import type { Header } from '../protocol/frame.js';
import type { PeerRequest } from '../protocol/messages.js';
import { chunksOf } from '../manifest.js';
import { UploadSlots } from '../scheduling/upload-slots.js';
import type { PeerAddress } from '../types.js';
import { Interests } from './interests.js';
import type { SessionContext } from './session-context.js';
import type { TakeAccount } from './take-account.js';

/** Chunks of one `have` looked at; the rest are ignored. */
const MAX_HAVE_CHUNKS = 65_536;

export type HaveContext = Pick<SessionContext, 'sources' | 'slots' | 'id' | 'spreads' | 'requesters'>;

export class HaveExchange {
  /** Contents this peer asked to hear `have`s and holders of (interests.ts). */
  private readonly interests: Interests;

  constructor(
    private readonly ctx: HaveContext,
    private readonly account: TakeAccount,
    private readonly send: (h: Header) => void,
  ) {
    this.interests = new Interests(ctx.sources, send);
  }

  /** The peer (serving on `listen`, if it said) is interested in content `m.cid`. */
  interest(m: Extract<PeerRequest, { t: 'interest' }>, listen: PeerAddress | null): void {
    const src = this.ctx.sources.byCid(m.cid);
    if (!src) return;
    // one interest per content and connection (a client sends one), at most MAX_INTERESTS:
    // a repeat or one past the cap is ignored, so it joins nothing and costs no walk of the content
    if (!this.interests.accepts(m.cid)) return;
    const theirs = m.have !== undefined ? Buffer.from(m.have, 'base64') : undefined;
    // a seeder shows each of several downloaders a few chunks at a time (spreads.ts)
    const shown = this.ctx.spreads ? this.ctx.spreads.join(this.ctx.id, src, theirs, (cid, chunks) => this.send({ t: 'have', cid, chunks })) : src.bitfield();
    this.send({ t: 'bitfield', cid: m.cid, have: Buffer.from(shown).toString('base64'), complete: src.complete });
    this.ctx.requesters?.join(this.ctx.id, m.cid, chunksOf(src.manifest), theirs);
    this.interests.add(m.cid, listen);
  }

  /** The peer has these chunks now: whatever we sent it of them is delivered, and a seeder may show it more. */
  have(m: Extract<PeerRequest, { t: 'have' }>): void {
    const chunks = m.chunks.slice(0, MAX_HAVE_CHUNKS).filter((c): c is number => typeof c === 'number' && Number.isInteger(c) && c >= 0);
    const now = Date.now();
    let acked = false;
    for (const c of chunks) {
      const key = UploadSlots.key(m.cid, c);
      this.ctx.slots?.acked(this.ctx.id, key, now);
      if (this.account.ack(key, now)) acked = true;
    }
    if (acked) {
      // it takes what we send: from now on what it has counts in the upload policy's rarity
      // (a get followed at once by a cancel never gets here)
      const src = this.ctx.sources.byCid(m.cid);
      if (src) this.ctx.requesters?.asked(this.ctx.id, m.cid, chunksOf(src.manifest));
    }
    this.ctx.requesters?.had(this.ctx.id, m.cid, chunks);
    this.ctx.spreads?.had(this.ctx.id, m.cid, chunks);
  }

  /** The connection ended: stop its news, and stop passing the peer on as a holder. */
  close(listen: PeerAddress | null): void {
    this.interests.close(listen);
  }
}
