/**
 * What the coordinator knows about one peer's performance: a smoothed rate of VERIFIED bytes (a
 * peer's usefulness is what passed its hash, not what it sent), strikes for bad data, the time of
 * its last useful byte (stall detection), its progress window (useful bytes since it last
 * finished a chunk, over the time it had our requests: scheduling/progress.ts judges trickles on
 * it), and from the rate the number of chunks it should have in flight (PIPELINE_SECONDS of data,
 * like libtorrent's request queue but shorter: swarm's peers are usually near), capped. Pure: the
 * clock is passed in.
 */
import type { ProgressWindow } from './progress.js';

/** Seconds of data each peer should have requested: enough to hide a request's round trip and
 * the seeder's disk read, short enough that the end of a download does not wait on a long queue. */
export const PIPELINE_SECONDS = 0.5;
export const MIN_PIPELINE_CHUNKS = 2;
export const MAX_PIPELINE_CHUNKS = 48;
export const START_PIPELINE_CHUNKS = 6;
export const MAX_STRIKES = 3;
const RATE_WINDOW_MS = 500;
const RATE_ALPHA = 0.5;

export class PeerStats {
  /** Smoothed bytes per second. */
  rate = 0;
  strikes = 0;
  bytes = 0;
  verifiedBytes = 0;
  chunksVerified = 0;
  lastByteAt: number;
  /** Useful bytes since it last finished a chunk, over the time it had requests of ours (progress.ts). */
  readonly progress: ProgressWindow;
  /** Last `busy` or window start: a `busy` with no byte since this mark ends a wait. */
  private busyMark: number;
  /** Since when it has had nothing asked of it (null: it has requests): that time is not its fault. */
  private idleAt: number | null;
  private windowStart: number;
  private windowBytes = 0;
  private sampled = false;

  constructor(now: number) {
    this.lastByteAt = now;
    this.windowStart = now;
    this.progress = { since: now, bytes: 0 };
    this.busyMark = now;
    this.idleAt = now;
  }

  /** Useful bytes arrived (not yet verified): the peer is alive. */
  onBytes(n: number, now: number): void {
    this.bytes += n;
    this.progress.bytes += n;
    this.lastByteAt = now;
    this.tick(now);
  }

  /** A chunk of `n` bytes from this peer passed its hash: this is what the rate measures. */
  onVerified(n: number, now: number): void {
    this.chunksVerified++;
    this.verifiedBytes += n;
    this.windowBytes += n;
    this.restartProgress(now);
    this.tick(now);
  }

  /** A new progress window: the peer finished a chunk. */
  restartProgress(now: number): void {
    this.progress.since = now;
    this.progress.bytes = 0;
    this.busyMark = now;
    this.idleAt = null;
  }

  /** Nothing is asked of it now: its window's clock stops (idempotent). */
  idle(now: number): void {
    this.idleAt ??= now;
  }

  /**
   * It is asked for chunks again: its window's clock runs on, without the idle time. Paused, not
   * restarted: a peer whose requests are cancelled now and then (endgame) is still judged on all
   * the time it held chunks.
   */
  asked(now: number): void {
    if (this.idleAt === null) return;
    this.progress.since = Math.min(now, this.progress.since + (now - this.idleAt));
    this.busyMark = now;
    this.idleAt = null;
  }

  /**
   * The peer said a request of ours waits for its upload slots. A seeder says so at once and then
   * every 2 s while the wait lasts: when no byte came since the last `busy` (or since the window
   * opened), that interval was a wait in its queue, not slow sending, and leaves the window. A
   * peer that sends bytes between its `busy`s gets no such credit (a trickle cannot hide in it).
   */
  onBusy(now: number): void {
    if (this.lastByteAt <= this.busyMark) this.progress.since = Math.min(now, this.progress.since + (now - this.busyMark));
    this.busyMark = now;
  }

  /** Close the rate window if it is old enough. Call on bytes and on timers. */
  tick(now: number): void {
    const elapsed = now - this.windowStart;
    if (elapsed < RATE_WINDOW_MS) return;
    const sample = (this.windowBytes * 1000) / elapsed;
    this.rate = this.sampled ? RATE_ALPHA * sample + (1 - RATE_ALPHA) * this.rate : sample;
    this.sampled = true;
    this.windowStart = now;
    this.windowBytes = 0;
  }

  /** Chunks this peer should have requested and not yet delivered. */
  pipelineChunks(chunkBytes: number): number {
    if (!this.sampled) return START_PIPELINE_CHUNKS;
    const want = Math.ceil((this.rate * PIPELINE_SECONDS) / chunkBytes);
    return Math.max(MIN_PIPELINE_CHUNKS, Math.min(MAX_PIPELINE_CHUNKS, want));
  }

  strike(): boolean {
    this.strikes++;
    return this.strikes >= MAX_STRIKES;
  }

  stalledFor(now: number): number {
    return now - this.lastByteAt;
  }
}
