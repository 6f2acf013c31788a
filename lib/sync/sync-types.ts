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
  /** On the member where files were deleted, the folders they emptied go after this long, if untouched meanwhile (default EMPTIED_GRACE_MS, emptied-later.ts). */
  emptiedGraceMs?: number;
  /** Verify and stage small files on the node's pool threads whatever the cores (default: from 3 cores on; landing.ts). */
  stageOnPool?: boolean;
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
  /** A file deleted in this folder (not by sync): the deletion is passed on. `many`: one of many (deletedHereMany follows). */
  deletedHere: [e: { name: string; many?: true }];
  /** One change here deleted many files (telling.ts), said each (deletedHere) and then once: how many, and their common folder ('' the top). */
  deletedHereMany: [e: { files: number; under: string }];
  /**
   * A conflict we lost: the version we had is kept as `copy`. `here`: it was edited here (else
   * fetched from a member that made it: two other members edited the file). `ours`, `theirs`: the
   * members (ip:port) whose index holds the version we had, and the one that won.
   */
  /** ours, theirs: the members (ip:port) whose index holds each version; oursBy, theirsBy: the device ids that made them (where known). */
  conflict: [e: { name: string; copy: string; here: boolean; ours: string[]; theirs: string[]; oursBy?: string; theirsBy?: string }];
  /** The folder that was moved away, replaced or unmounted (warned) is the one sync started on again: followed again. */
  back: [e: { dir: string }];
  /** `info`: the stable error code (SWARM_ERR_…) and the file or peer it is about, when there is one. */
  warning: [message: string, info?: WarningInfo];
  /** Nothing left to do with what is known now. */
  idle: [e: { files: number; pending: number }];
}

