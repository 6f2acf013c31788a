/**
 * What `swarm sync` does about one name, given what this peer has and what another peer says it
 * has: pure, no files or sockets, so every case is tested on its own and every peer decides the
 * same way (they converge).
 *
 * An entry is a live version (content id, mtime) or a deletion (a tombstone: the content id that
 * was deleted and when). Each side also says which version it last agreed on with the swarm
 * (`agreed`: the content id it fetched or saw everywhere), which is how "changed since we last
 * agreed" is told from "the other side changed", and the versions a file had here before local
 * edits (`prev`, newest first, a few): a peer that made a file and stopped before it saw anyone
 * else with it has agreed on nothing, yet its next edit and another peer's edit of the copy it
 * fetched are a conflict, not a first contact:
 *
 *   remote live, nothing here ........................... fetch
 *   remote live, tombstone here ......................... fetch if the remote's version is not the
 *                                                         one we deleted and is newer than the deletion
 *   same content id ..................................... agree (nothing to move)
 *   both live, differ: theirs was edited from ours ...... fetch (ours is in their lineage)
 *                      ours was edited from theirs ...... keep (they will fetch)
 *   both live, differ, a side never agreed on it:
 *                      both edited from one version ..... conflict, as below (a common lineage)
 *                      no version in common ............. the newer mtime wins (seed 002); the
 *                                                         version replaced goes to the trash
 *   both live, differ: ours is what we agreed on ........ fetch (only they changed it)
 *                      theirs is what they agreed on .... keep (only we changed it; they will fetch)
 *                      neither changed (agreed apart) ... the newer one, no copy
 *                      both changed ..................... conflict: the newer mtime wins (a tie: the
 *                                                         larger content id), on every peer alike; the
 *                                                         loser keeps its version as a conflict copy
 *   remote tombstone, ours live: the version it deleted . delete here (to the trash)
 *                                another version ........ keep (an edit, or one they never had)
 *   remote tombstone, nothing or a tombstone here ....... remember the deletion (never resurrect)
 *   a stock seed-002 peer's file (cid "legacy:MTIME") .... fetch if nothing here, or if it is
 *                                                         strictly newer than ours (or our deletion)
 */
import { isLegacyCid } from '../protocol/entries.js';


export interface SyncEntry {
  name: string;
  cid: string;
  /** Modification time, seconds (for a tombstone: the deleted version's). */
  mtime: number;
  size: number;
  /** When it was deleted, seconds since the epoch; absent for a live file. */
  deleted?: number;
  /** The content id this side last agreed on with its peers, if any. */
  agreed?: string;
  /** Versions this file had here before local edits made the current one, newest first (at most PREV_KEEP). */
  prev?: string[];
}

/** Versions of a file's lineage kept in `prev` (and accepted from a peer). */
export const PREV_KEEP = 4;

/** The versions `e`'s current one was made from, as far as its side knows: what it agreed on and what it edited. */
function lineage(e: SyncEntry): string[] {
  return e.agreed === undefined ? (e.prev ?? []) : [e.agreed, ...(e.prev ?? [])];
}

export type SyncAction =
  | { do: 'nothing' }
  | { do: 'agree'; cid: string }
  | { do: 'fetch'; remote: SyncEntry }
  | { do: 'conflict'; remote: SyncEntry; ours: 'wins' | 'loses' }
  | { do: 'delete'; tombstone: SyncEntry }
  | { do: 'remember-deletion'; tombstone: SyncEntry };

/**
 * The winner of two versions that both changed: newer mtime, then a verified version over one
 * only stock seed-002 peers hold ("legacy:MTIME": no hash), then the larger content id.
 */
export function newerWins(a: { cid: string; mtime: number }, b: { cid: string; mtime: number }): 'a' | 'b' {
  if (a.mtime !== b.mtime) return a.mtime > b.mtime ? 'a' : 'b';
  const stockA = isLegacyCid(a.cid);
  if (stockA !== isLegacyCid(b.cid)) return stockA ? 'b' : 'a';
  return a.cid > b.cid ? 'a' : 'b';
}

/** Of two live versions members hold, the one sync goes by: an edit of the other, else newerWins. */
export function later(a: SyncEntry, b: SyncEntry): 'a' | 'b' {
  if (lineage(a).includes(b.cid)) return 'a';
  if (lineage(b).includes(a.cid)) return 'b';
  return newerWins(a, b);
}

export function decide(local: SyncEntry | undefined, remote: SyncEntry): SyncAction {
  // a stock seed-002 peer's file (seed 002's rule, nothing more: it has no content id to agree on,
  // no deletions): fetched when new here, or strictly newer than ours (ours goes to the trash)
  if (isLegacyCid(remote.cid) && remote.deleted === undefined) {
    if (!local) return { do: 'fetch', remote };
    const since = local.deleted ?? local.mtime;
    return remote.mtime > since ? { do: 'fetch', remote } : { do: 'nothing' };
  }
  if (remote.deleted !== undefined) {
    if (!local) return { do: 'remember-deletion', tombstone: remote };
    if (local.deleted !== undefined) return local.deleted >= remote.deleted ? { do: 'nothing' } : { do: 'remember-deletion', tombstone: remote };
    // ours is live: delete it only if it is the very version they deleted
    return local.cid === remote.cid ? { do: 'delete', tombstone: remote } : { do: 'nothing' };
  }
  if (!local) return { do: 'fetch', remote };
  if (local.deleted !== undefined) {
    if (remote.cid === local.cid) return { do: 'nothing' }; // the version we deleted: they will delete it
    return remote.mtime > local.deleted ? { do: 'fetch', remote } : { do: 'nothing' };
  }
  if (local.cid === remote.cid) return local.agreed === local.cid ? { do: 'nothing' } : { do: 'agree', cid: local.cid };
  const ours = lineage(local);
  const theirs = lineage(remote);
  // one version was edited from the other: the edit wins, whatever the clocks say
  if (theirs.includes(local.cid)) return { do: 'fetch', remote };
  if (ours.includes(remote.cid)) return { do: 'nothing' };
  if (local.agreed === undefined || remote.agreed === undefined) {
    // both edited from a version they shared (one side made it, the other fetched it, and the maker
    // stopped before it saw the copy): a conflict, decided as below
    if (ours.some((c) => theirs.includes(c))) return { do: 'conflict', remote, ours: newerWins(local, remote) === 'a' ? 'wins' : 'loses' };
    // first contact about this name (nothing in common): the newer wins, as in seed 002; the
    // version replaced goes to the trash
    return newerWins(local, remote) === 'b' ? { do: 'fetch', remote } : { do: 'nothing' };
  }
  const weChanged = local.agreed !== local.cid;
  const theyChanged = remote.agreed !== remote.cid;
  if (!weChanged && theyChanged) return { do: 'fetch', remote };
  if (weChanged && !theyChanged) return { do: 'nothing' };
  // neither changed since its own agreement (they agreed with different peers): the newer, no copy
  if (!weChanged && !theyChanged) return newerWins(local, remote) === 'b' ? { do: 'fetch', remote } : { do: 'nothing' };
  // both changed since they last agreed: the same rule on every peer, and the loser kept as a copy
  return { do: 'conflict', remote, ours: newerWins(local, remote) === 'a' ? 'wins' : 'loses' };
}

/** `NAME.sync-conflict-YYYYMMDD-HHMMSS-PEERID.EXT` for the losing version of NAME (mtime in seconds). */
export function conflictName(name: string, mtime: number, peerId: string): string {
  const d = new Date(mtime * 1000).toISOString();
  const stamp = `${d.slice(0, 4)}${d.slice(5, 7)}${d.slice(8, 10)}-${d.slice(11, 13)}${d.slice(14, 16)}${d.slice(17, 19)}`;
  const slash = name.lastIndexOf('/');
  const dot = name.lastIndexOf('.');
  const hasExt = dot > slash + 1;
  const base = hasExt ? name.slice(0, dot) : name;
  const ext = hasExt ? name.slice(dot) : '';
  return `${base}.sync-conflict-${stamp}-${peerId.slice(0, 7)}${ext}`;
}

export function isConflictCopy(name: string): boolean {
  return /\.sync-conflict-\d{8}-\d{6}-[0-9a-f]{7}(\.[^/]*)?$/.test(name);
}
