/**
 * What the peer server hands overlay messages to (seed 001's SEARCH and DISCOVER), declared here
 * and implemented above (discovery/overlay.ts), so the peer layer never imports discovery. A
 * session passes each `search` / `discover` it receives with who sent it and a way to answer on
 * the same connection (hits and pongs travel back along the path the request came by).
 */
import type { Header } from '../protocol/frame.js';
import type { PeerRequest } from '../protocol/messages.js';
import type { PeerAddress } from '../types.js';

export type OverlayRequest = Extract<PeerRequest, { t: 'search' } | { t: 'discover' }>;

export interface OverlayFrom {
  /** The connection's number on this server (one per session; rate limits count per connection). */
  key: string;
  /** The remote address of the connection, and the peer id of its hello. */
  ip: string;
  peer: string;
  /** Where the sender serves, if it said (hello's listen port). */
  listen: PeerAddress | null;
  /** Send on this connection; false when it is closed. */
  reply(h: Header): boolean;
}

export interface OverlayPort {
  request(m: OverlayRequest, from: OverlayFrom): void;
  /** A peer that takes part in the overlay (its hello says `overlay`) connected: links are two-way. */
  joined?(from: OverlayFrom): void;
}
