/**
 * What one connection takes from a serving peer, kept so that the server can close connections
 * that ask and take nothing, or keep making it refuse: pure, the clock passed in.
 *
 * - Acknowledgements: the chunks sent whole and not acknowledged yet (SentChunks). Only a `have`
 *   for one of them counts as taking; a `have` of anything else proves nothing (any client can
 *   send one; one every few seconds kept such a connection open for ever: hostile review).
 * - The "took nothing" clock: runs while the peer has asked for chunks, stops while it asks
 *   nothing and while it waits for one of our upload slots with every chunk sent to it
 *   acknowledged (it waits on us then: slow honest peers behind the laggards' shared slot were
 *   closed at 30 s), and starts again from zero when it acknowledges a chunk we sent it. Asking
 *   again after a cancel does not start it afresh (a sybil could cycle get and cancel).
 * - Refusals: `get`s for chunks it was not told we have, or outside the content. A swarm
 *   downloader asks only for chunks we said we have, so it is hardly ever refused; a client asking
 *   a partial holder for a range with a hole far inside made us check the range again and again.
 */
import { SentChunks } from '../scheduling/upload-slots.js';

/** Refused `get`s one connection may have within REFUSALS_WINDOW_MS; one more closes it. */
export const MAX_REFUSED_GETS = 32;
export const REFUSALS_WINDOW_MS = 10_000;

export class TakeAccount {
  private readonly unacked = new SentChunks();
  /** When the "took nothing" clock (re)started, shifted by the spells it was stopped (0: never ran). */
  private tookAt = 0;
  /** When the peer last stopped asking (the clock stopped then). */
  private idleSince = 0;
  private refusedCount = 0;
  private refusedSince = 0;

  /** Chunk `key` went out whole. */
  sent(key: string, now: number): void {
    this.unacked.sent(key, now);
  }

  /** The peer says it has chunk `key`: true when that acknowledges a chunk we sent it (its clock starts again). */
  ack(key: string, now: number): boolean {
    if (!this.unacked.ack(key, now)) return false;
    this.tookAt = now;
    return true;
  }

  /** A request was cancelled: chunks sent whole for it that `gone` names wait for no acknowledgement. Returns their keys. */
  forget(gone: (key: string) => boolean): string[] {
    return this.unacked.forget(gone);
  }

  /** Since when chunks sent have waited with no acknowledgement (0: none waits). */
  unackedSince(): number {
    return this.unacked.since();
  }

  /** The peer asks again after asking nothing: the clock goes on from where it stopped. */
  asking(now: number): void {
    const ran = this.tookAt ? Math.max(0, this.idleSince - this.tookAt) : 0;
    this.tookAt = now - ran;
    this.idleSince = now;
  }

  /** The peer asks nothing any more (its requests are all served or cancelled). */
  idle(now: number): void {
    this.idleSince = now;
  }

  /** It waited `ms` for one of our upload slots: with nothing of ours unacknowledged, that is not taking nothing. */
  waitedOnUs(ms: number): void {
    if (this.tookAt && this.unacked.since() === 0) this.tookAt += ms;
  }

  /**
   * How long it has asked and taken nothing (0: not counting). `waitingForSlot`: a request of
   * its waits for one of our upload slots now.
   */
  tookNothingFor(now: number, waitingForSlot: boolean): number {
    if (!this.tookAt || (waitingForSlot && this.unacked.since() === 0)) return 0;
    return now - this.tookAt;
  }

  /** A `get` was refused: true when that is more than MAX_REFUSED_GETS within one window. */
  refused(now: number): boolean {
    if (now - this.refusedSince > REFUSALS_WINDOW_MS) {
      this.refusedSince = now;
      this.refusedCount = 0;
    }
    return ++this.refusedCount > MAX_REFUSED_GETS;
  }
}
