/**
 * The message contract between the coordinator (main thread) and peer hosts (worker threads, or
 * the inline host on the main thread). Plain data; chunk bytes travel as transferred
 * ArrayBuffers, never copied.
 */
import type { WireError } from '../errors.js';
import type { HelloFields } from '../protocol/messages.js';
import type { PeerAddress } from '../types.js';
import type { PeerThreadTimes } from './breakdown.js';

export type ToPeerHost =
  /** Connect, say `hello` (ours), then ask for the peer's bitfield of `cid` (`interest`). */
  | { type: 'connect'; peerId: number; host: string; port: number; cid: string; chunks: number; hello: HelloFields; bits: Uint8Array }
  | { type: 'get'; peerId: number; reqId: number; cid: string; from: number; to: number; size: number; chunkBytes: number }
  | { type: 'cancel'; peerId: number; reqId: number }
  | { type: 'buffer'; bytes: Uint8Array }
  | { type: 'close'; peerId: number }
  /** Chunks we newly verified: told to every peer we fetch `cid` from (they free upload slots). */
  | { type: 'have'; cid: string; chunks: number[] }
  /** Ask for the host's timings (answered with 'stats'). */
  | { type: 'stats' }
  | { type: 'shutdown' };

export type FromPeerHost =
  | { type: 'connected'; peerId: number }
  /** A whole chunk, checksums of all its packets good; `bytes` is transferred (length may exceed the chunk). */
  | { type: 'chunk'; peerId: number; reqId: number; chunk: number; bytes: Uint8Array; length: number }
  /** Bytes received since the last report (stall detection); `junk`: of them, bytes of packets
   * that belong to no live request (a peer flooding us with data nobody asked for). */
  | { type: 'bytes'; peerId: number; n: number; junk: number }
  /** Bad data: the chunk (if any) is dropped and must be fetched again. */
  | { type: 'strike'; peerId: number; reqId: number; chunk: number; error: WireError }
  /** The request is over; chunks not delivered by now will not be. */
  | { type: 'done'; peerId: number; reqId: number; error?: WireError }
  /** The peer's hello (its id, listening port) arrived. */
  | { type: 'hello'; peerId: number; peer: string; listen: number | null }
  /** Which chunks the peer has verified (checked: the right length); `complete` when all. */
  | { type: 'bitfield'; peerId: number; bits: Uint8Array; complete: boolean }
  /** Chunks the peer newly has (checked: in range). */
  | { type: 'have'; peerId: number; chunks: number[] }
  /** Other holders the peer knows (checked addresses; peer exchange). */
  | { type: 'peers'; peerId: number; peers: PeerAddress[] }
  /** A request of ours waits for one of the peer's upload slots. */
  | { type: 'busy'; peerId: number; reqId: number }
  /** The first bytes of a request arrived: it left the peer's queue (once per request). */
  | { type: 'started'; peerId: number; reqId: number }
  /** The peer broke the protocol in a way that is a strike, outside any request. */
  | { type: 'misbehaved'; peerId: number; error: WireError }
  | { type: 'closed'; peerId: number; error?: WireError }
  | { type: 'stats'; peerId: -1; times: PeerThreadTimes };
