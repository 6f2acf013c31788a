/**
 * What the peer server answers the sync messages from (seed 000's index and news, and the folder
 * key's proof), declared here and implemented above (sync/), so the peer layer never imports sync.
 *
 * A session hands every sync message of its connection to one SyncConnection (`open`, once per
 * connection, on the first sync message): the connection's proof of the folder key is state of
 * that connection, and nothing of the index is answered before it (sync/membership.ts).
 */
import type { Header } from '../protocol/frame.js';
import type { PeerRequest } from '../protocol/messages.js';
import type { PeerAddress } from '../types.js';

/** The sync messages a session routes to its SyncConnection. */
export type SyncRequest = Extract<PeerRequest, { t: 'sync-index' | 'sync-watch' | 'sync-auth' | 'sync-proof' }>;

/** One peer connection as the sync side sees it. */
export interface SyncLink {
  /** ip:port of the connection, for the log. */
  remote: string;
  /** The peer id of the other side's hello. */
  peer: string;
  /** Where the other side serves (hello's listen port), if it said. */
  listen: PeerAddress | null;
  send(h: Header): void;
  /** End the connection (after a refusal that was sent). */
  end(reason: string): void;
}

export interface SyncConnection {
  handle(m: SyncRequest): void;
  /** The connection ended (idempotent): stop watching. */
  close(): void;
}

export interface SyncPort {
  /** The sync side of one connection: every sync message of it goes to `handle`. */
  open?(link: SyncLink): SyncConnection;
  /**
   * A page of the index after `after` (entries as they go on the wire); with `since` (a version
   * this process gave earlier), only what changed after it. `version`: the version read at.
   * (Used directly only by sessions that predate `open`: an open folder's answers.)
   */
  page(after: string | undefined, since?: number): { entries: unknown[]; next?: string; version?: number };
  /** The index version now; `onChange` tells of every change. */
  readonly version: number;
  onChange(fn: () => void): () => void;
  /** A peer that serves on `addr` watches our index: it syncs too, so we read its index back. */
  watchedBy?(addr: { ip: string; port: number }): void;
}
