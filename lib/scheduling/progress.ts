/**
 * Is a peer that is sending us data making progress, or only trickling? Pure: the window (its
 * useful bytes since it last completed a chunk, counting only time it had requests of ours and
 * did not say they wait in its queue; kept by PeerStats) and the clock come in, a verdict out.
 *
 * A byte now and then keeps a peer clear of the stall limit, and a chunk it never finishes was
 * only given up on at the request timeout, then handed to the next such peer: six liars sending
 * 100 bytes every 2 s held the one rare chunk of a download for minutes (hostile review). Bytes
 * are progress only at a rate that finishes a chunk: a peer whose rate over the window, once the
 * window is `graceMs` old, would not finish one chunk within TRICKLE_MARGIN request timeouts is
 * trickling, and is set aside at once instead of after a timeout per chunk.
 *
 * The margin keeps this stricter than nothing the request timeout does already (no chunk within
 * it: a strike): a peer cut here would have been struck there. Without it, measurement noise cut
 * honest peers: a rate-limited seeder sends a chunk in bursts of half a chunk (its reads), so a
 * window of a few seconds holds one burst or two. With 1 MiB chunks and the 20 s timeout a peer
 * is cut early below 26 KB/s; 100 KB/s (a chunk in 10 s) is far from it, and a liar's 50 B/s is
 * cut after the grace (10 s by default).
 */

/** The grace before a peer's rate is judged, in first-chunk deadlines (5 s each by default). */
export const TRICKLE_GRACE_FIRST_CHUNKS = 2;
/** Trickling: a chunk would take longer than this many request timeouts at the window's rate. */
export const TRICKLE_MARGIN = 2;

export interface ProgressWindow {
  /** When the window opened. */
  since: number;
  /** Useful bytes received in it. */
  bytes: number;
}

export interface TrickleLimits {
  /** The window must be this old before it is judged (a rate needs a few packets to mean anything). */
  graceMs: number;
  /** A chunk must come within this long (the request timeout). */
  requestTimeoutMs: number;
  chunkBytes: number;
}

/**
 * Milliseconds one chunk would take at the window's rate, when that is longer than TRICKLE_MARGIN
 * request timeouts and the window is old enough to tell; otherwise null (not trickling, or too early).
 */
export function trickleChunkMs(w: ProgressWindow, now: number, l: TrickleLimits): number | null {
  const elapsed = now - w.since;
  if (elapsed < l.graceMs) return null;
  // chunkBytes / (bytes / elapsed) > TRICKLE_MARGIN * requestTimeoutMs, without dividing by a zero rate
  if (w.bytes * TRICKLE_MARGIN * l.requestTimeoutMs >= l.chunkBytes * elapsed) return null;
  return w.bytes > 0 ? (l.chunkBytes * elapsed) / w.bytes : Infinity;
}
