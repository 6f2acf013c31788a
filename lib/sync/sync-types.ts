/**
 * What a Syncer (syncer.ts) takes and tells: its options and its events, the shapes the CLI
 * (bin/commands/sync.ts), the shell and the tests program against.
 */
import type { TargetLock } from '../storage/lock.js';
import type { FolderKey } from './folder-key.js';

export interface SyncOptions {
  /** The folder key (folder-key.ts): only peers that prove they hold it sync with us. */
  key?: FolderKey | null;
  /** No key: every peer syncs (any peer can change the folder). Must be said, never assumed. */
  open?: boolean;
  /** Do not propagate deletions (and never delete here because a peer did). */
  noDelete?: boolean;
  /** Days replaced and deleted files stay in DIR/.swarm/trash/ (default 30). */
  trashDays?: number;
  /** Big files (more than one chunk) fetched at once (default 4); small files go pipelined, in batches. */
  parallel?: number;
  /** How often every peer's index is read again, besides news (default 10 s). */
  pullMs?: number;
  /** The folder's sync lock, already taken (lockSyncFolder); else start() takes it. Released at close. */
  lock?: TargetLock;
  /** On the member where files were deleted, the folders they emptied go after this long, if untouched meanwhile (default EMPTIED_GRACE_MS, syncer.ts). */
  emptiedGraceMs?: number;
}

export interface WarningInfo {
  code?: string;
  name?: string;
  peer?: string;
  /** The tracker it is about (one that did not answer). */
  tracker?: string;
}

export interface SyncEvents {
  /** A big file (more than one chunk) starts coming: it can take a while, so it is said. */
  fetching: [e: { name: string; size: number; from: number }];
  /** `replaced`: the version it replaced here is in DIR/.swarm/trash (not a conflict copy: README). */
  fetched: [e: { name: string; size: number; from: number; replaced: boolean }];
  deleted: [e: { name: string }];
  /** A file deleted in this folder (not by sync): the deletion is passed on. */
  deletedHere: [e: { name: string }];
  conflict: [e: { name: string; copy: string }];
  /** `info`: the stable error code (SWARM_ERR_…) and the file or peer it is about, when there is one. */
  warning: [message: string, info?: WarningInfo];
  /** Nothing left to do with what is known now. */
  idle: [e: { files: number; pending: number }];
}

