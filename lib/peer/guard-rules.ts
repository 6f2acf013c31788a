/**
 * How the connection guard (net/guard.ts) judges one serving connection (session.ts), pure, the
 * clock passed in: `overdueReason` says why it must be closed now (no hello in time, a request
 * arriving too slowly, replies not read, chunks sent and never acknowledged, asking and taking
 * nothing, idle), and when the server is full `evictRank` orders the connections that may make
 * room: no hello yet first, then stuck ones (not reading, not acknowledging), then slow requests,
 * then idle ones; a connection doing real work is never evicted.
 */
import type { ServerLimits } from '../net/guard.js';

/**
 * When the server is full, a connection whose socket has not taken what we wrote for this long
 * may be evicted (longest blocked first). A reader taking ≥ 2 MiB/s never waits this long for a
 * piece (1 MiB at most); one that reads nothing has waited seconds by the time anyone needs its slot.
 */
const STUCK_EVICT_MS = 500;
/**
 * When the server is full, a connection with a chunk unacknowledged for this long may be evicted.
 * A reader at ≥ 1 MiB/s acknowledges a 1 MiB chunk sooner; one that never does holds an upload
 * slot, not only a connection.
 */
const UNACKED_EVICT_MS = 2_000;
/** When the server is full, a request still arriving after this long may be evicted. */
const PARTIAL_EVICT_MS = 1_000;

/** What the guard reads of one connection. Times are Date.now() values; 0: that clock is not running. */
export interface SessionClocks {
  /** A plain-name File Request (legacy.ts): only its reading of the file is judged. */
  legacy: boolean;
  /** The peer's hello has arrived. */
  hello: boolean;
  /** A get is being sent or queued. */
  busy: boolean;
  /** When the connection was accepted. */
  since: number;
  /** When it last did real work: a request handled, data taken. */
  lastActivityAt: number;
  /** Since when a request has been arriving (the frame deadline). */
  partialSince: number;
  /** Since when the socket has held what we wrote, unread. */
  blockedSince: number;
  /** Since when chunks sent to it have waited for an acknowledgement (take-account.ts). */
  unackedSince: number;
  /** How long it has asked for chunks and taken none (take-account.ts; 0: not counting). */
  tookNothingFor: number;
}

/** Why this connection must be closed now, or null. */
export function overdueReason(c: SessionClocks, now: number, limits: ServerLimits): string | null {
  if (c.legacy) return c.blockedSince && now - c.blockedSince > limits.sendStallMs ? 'stopped reading the file it asked for' : null;
  if (!c.hello && now - c.since > limits.handshakeMs) return `no hello within ${limits.handshakeMs} ms`;
  if (c.partialSince && now - c.partialSince > limits.frameMs) return `a request took longer than ${limits.frameMs} ms to arrive`;
  if (c.blockedSince && now - c.blockedSince > limits.sendStallMs) return `did not read replies for ${limits.sendStallMs} ms`;
  // kept by the session, not read from the upload slots: those forget a chunk after their ack
  // timeout (5 s), so a peer that never acknowledged was never closed for it (hostile review)
  const unacked = c.unackedSince;
  if (unacked && now - unacked > limits.sendStallMs) return `did not acknowledge a chunk sent to it for ${limits.sendStallMs} ms`;
  // asking and taking nothing for that long is what a client that never reads does: such
  // waiters (and slot holders that got their slot late) would otherwise hold sockets and files
  // for minutes (take-account.ts says what counts)
  if (c.busy && c.tookNothingFor > limits.sendStallMs) {
    return `asked for chunks and took none for ${limits.sendStallMs} ms`;
  }
  if (!c.busy && now - c.lastActivityAt > limits.idleMs) return `idle for ${limits.idleMs} ms`;
  return null;
}

/** When the server is full: > 0 may be evicted, higher first; 0 is doing real work. */
export function evictRank(c: SessionClocks, now: number): number {
  if (!c.hello && !c.legacy) return 4e12 + (now - c.since);
  if (c.blockedSince && now - c.blockedSince > STUCK_EVICT_MS) return 3e12 + (now - c.blockedSince);
  // a swarm peer says `have` for every chunk it gets; one that does not is stuck or hostile
  const unacked = c.unackedSince;
  if (unacked && now - unacked > UNACKED_EVICT_MS) return 3e12 + (now - unacked);
  if (c.partialSince && now - c.partialSince > PARTIAL_EVICT_MS) return 2e12 + (now - c.partialSince);
  if (!c.busy) return 1e12 + (now - c.lastActivityAt);
  return 0;
}
