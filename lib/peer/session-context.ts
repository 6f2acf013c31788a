/**
 * What the peer server hands each of its sessions (session.ts): the parts shared by every
 * connection (the sources it serves, the upload policy and its views of the requesters, the
 * overlay and sync ports) and this connection's number in them. Declared here so that the
 * session's parts (have-exchange.ts) take the fields they use without importing the session.
 */
import type { Log } from '../log.js';
import type { HelloFields } from '../protocol/messages.js';
import type { TokenBucket } from '../scheduling/token-bucket.js';
import type { UploadSlots } from '../scheduling/upload-slots.js';
import type { RequesterChunks } from '../scheduling/requester-chunks.js';
import type { SourceIndex } from './source.js';
import type { Spreads } from './spreads.js';
import type { OverlayPort } from './overlay-port.js';
import type { SyncPort } from './sync-port.js';

export interface SessionContext {
  sources: SourceIndex;
  log: Log;
  upload: TokenBucket | null;
  hello: HelloFields;
  /** The server's upload policy (null: every chunk goes at once). */
  slots: UploadSlots | null;
  /** This connection's number for the upload policy. */
  id: number;
  /** How a seeder shows its content to several downloaders (null: everything at once). */
  spreads: Spreads | null;
  /** What the peers fetching from this server have (the upload policy's rarity); absent: not counted. */
  requesters?: RequesterChunks;
  /** Where search and discover requests go (null: this peer is not in an overlay). */
  overlay: OverlayPort | null;
  /** The sync index this peer answers from (null: it does not sync a folder). */
  sync: SyncPort | null;
}
