/**
 * What `swarm sync` does about one name, given what this peer has and what another peer says it
 * has: pure, no files or sockets, so every case is tested on its own and every peer decides the
 * same way (they converge).
 *
 * An entry is a live version (content id, mtime) or a deletion (a tombstone: the content id that
 * was deleted and when). Each side also says which version it last agreed on with the swarm
 * (`agreed`: the content id it fetched or saw everywhere), which is how "changed since we last
 * agreed" is told from "the other side changed", and the versions a file had here before local
 * edits (`prev`, newest first, a few): its lineage. Two different live versions are ordered the
 * same way on every peer, the newer mtime first (a tie: the larger content id), so any number of
 * peers converge on one; what lineage and agreement decide is whether the loser is kept:
 *
 *   remote live, nothing here ........................... fetch
 *   remote live, tombstone here ......................... fetch if it outlives our deletion (an
 *                                                         edit of the version deleted, or newer than
 *                                                         the deletion, and not an older version)
 *   same content id ..................................... agree (nothing to move)
 *   both live, differ: the winner was made from the loser  an update: the loser's side fetches
 *                      the loser was made from the winner  (an edit on a slow clock) conflict
 *                      the loser changed since its side
 *                      agreed .......................... conflict
 *                      both made from a third version ... conflict (a maker that stopped before it
 *                                                         saw the copy agreed on nothing)
 *                      otherwise ........................ the newer wins, the other goes to the
 *                                                         trash (first contact, as seed 002; or
 *                                                         the version the swarm agreed on)
 *   conflict: the winner stays; the loser's side renames its version NAME.sync-conflict-… (named
 *   after the version's maker, so members that lost the same version make one name; it then
 *   spreads like any file) and fetches the winner
 *   remote tombstone, ours live: the version it deleted,
 *                                or one it was made from  delete here (to the trash)
 *                                an edit of it, or newer
 *                                than the deletion ...... keep (and the deleting side takes it)
 *                                else ................... delete (older, and not an edit of it)
 *   remote tombstone, nothing or a tombstone here ....... remember the deletion (never resurrect)
 *   a stock seed-002 peer's file (cid "legacy:MTIME") .... fetch if nothing here, or if it is
 *                                                         strictly newer than ours (or our deletion)
 */
import { isLegacyCid } from '../protocol/entries.js';
import { isContentId } from '../hashing.js';


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
  /**
   * The device id (device-id.ts) of the folder that made this version (new or edited there),
   * passed on with it: a conflict copy of the version is named after it, so every member that
   * keeps the same losing version makes the same name (conflict-copy.ts). Absent from an older
   * build's entries (the copy is then named after the folder that makes it). A peer's word: it
   * chooses a name's suffix, nothing more.
   */
  maker?: string;
}

/**
 * Versions of a file's lineage kept in `prev` (and accepted from a peer). With 4, a maker that
 * edited a file five times before it saw the copy another peer fetched lost sight of the version
 * both started from: the two edits met as a first contact, and the older went only to the trash
 * (model checker: 7-16 of 50,000 one-maker histories; with 8, none in 300,000). A longer chain of
 * offline edits has the same end. 8 ids are 528 bytes of a page at most.
 */
export const PREV_KEEP = 8;

/** A lineage as this version sends and keeps it: at most PREV_KEEP content ids. */
export function isLineage(v: unknown): v is string[] {
  return Array.isArray(v) && v.length <= PREV_KEEP && v.every(isContentId);
}

/** `versions` as a lineage of `cid`: each once, never `cid` itself, the newest PREV_KEEP. */
export function boundLineage(versions: readonly string[], cid: string): string[] {
  return versions.filter((c, i) => c !== cid && versions.indexOf(c) === i).slice(0, PREV_KEEP);
}

/** The versions `e`'s current one was made from, as far as its side knows: what it agreed on and what it edited. */
export function lineage(e: SyncEntry): string[] {
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

/**
 * Whether live version `v` outlives the deletion `t`: it is neither the version deleted nor one it
 * was made from, and it is an edit of it or newer than the deletion. The live side keeps it
 * exactly when the deleting side takes it back, so the two agree.
 */
function outlives(v: SyncEntry, t: SyncEntry): boolean {
  if (v.cid === t.cid || lineage(t).includes(v.cid)) return false;
  return lineage(v).includes(t.cid) || v.mtime > t.deleted!;
}

/**
 * The one entry of the members' for a name that `decide` weighs ours against (their entries merged).
 * Ours counts too: ours, live and taken back by a member's deletion (the version deleted, one it was
 * made from, or older and no edit of it), meets that deletion first (unless `noDelete`: deletions
 * are not ours to follow). Else the newest live version (newerWins) that no deletion seen, theirs
 * or ours, takes back; else the latest deletion. A live version does not simply beat every
 * deletion: with three peers, the two that first read each other (both live) would never delete
 * what the third deleted, and the third would never take it back (hostile review 43).
 */
export function mergeRemote(local: SyncEntry | undefined, entries: Iterable<SyncEntry>, o: { noDelete?: boolean } = {}): SyncEntry | undefined {
  const list = [...entries];
  const deletions = list.filter((e) => e.deleted !== undefined);
  if (local && local.deleted === undefined && !o.noDelete) {
    let by: SyncEntry | undefined;
    for (const t of deletions) if (!outlives(local, t) && (!by || t.deleted! > by.deleted!)) by = t;
    if (by) return by;
  }
  const seen = local?.deleted !== undefined ? [...deletions, local] : deletions;
  let live: SyncEntry | undefined;
  for (const e of list) {
    if (e.deleted !== undefined || seen.some((t) => !outlives(e, t))) continue;
    if (!live || newerWins(e, live) === 'a') live = e;
  }
  if (live) return live;
  let latest: SyncEntry | undefined;
  for (const t of deletions) if (!latest || t.deleted! > latest.deleted!) latest = t;
  return latest;
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
    // ours is live: it stays if it outlives their deletion, as the deleting side decides too
    return outlives(local, remote) ? { do: 'nothing' } : { do: 'delete', tombstone: remote };
  }
  if (!local) return { do: 'fetch', remote };
  if (local.deleted !== undefined) {
    if (remote.cid === local.cid) return { do: 'nothing' }; // the version we deleted: they will delete it
    // theirs comes back here exactly when the live side keeps it (else the two never agree)
    return outlives(remote, local) ? { do: 'fetch', remote } : { do: 'nothing' };
  }
  if (local.cid === remote.cid) return local.agreed === local.cid ? { do: 'nothing' } : { do: 'agree', cid: local.cid };
  // two versions: the newer wins on every peer alike (a total order, so any number of peers
  // converge); the loser is kept as a conflict copy when it holds a change of its own
  const w = newerWins(local, remote);
  const keep = w === 'a' ? keepsLoser(local, remote) : keepsLoser(remote, local);
  if (keep) return { do: 'conflict', remote, ours: w === 'a' ? 'wins' : 'loses' };
  return w === 'a' ? { do: 'nothing' } : { do: 'fetch', remote };
}

/**
 * Whether the version that lost to `winner` is kept beside it as a conflict copy: not when the
 * winner was made from it (an update); yes when it was made from the winner (an edit on a slow
 * clock), when it changed since its side last agreed, or when both were made from a third version
 * (the maker of a file that stopped before it saw the copy another peer fetched agreed on
 * nothing). Otherwise (first contact, or a version the swarm agreed on) it only goes to the trash.
 */
function keepsLoser(winner: SyncEntry, loser: SyncEntry): boolean {
  const w = lineage(winner);
  if (w.includes(loser.cid)) return false;
  const l = lineage(loser);
  if (l.includes(winner.cid)) return true;
  if (loser.agreed !== undefined && loser.agreed !== loser.cid) return true;
  return l.some((c) => c !== loser.cid && c !== winner.cid && w.includes(c));
}

/** `NAME.sync-conflict-YYYYMMDD-HHMMSS-DEVICEID7.EXT` for the losing version of NAME (mtime in seconds; the maker's device id). */
export function conflictName(name: string, mtime: number, device: string, n = 1): string {
  const d = new Date(mtime * 1000).toISOString();
  const stamp = `${d.slice(0, 4)}${d.slice(5, 7)}${d.slice(8, 10)}-${d.slice(11, 13)}${d.slice(14, 16)}${d.slice(17, 19)}`;
  const slash = name.lastIndexOf('/');
  const dot = name.lastIndexOf('.');
  const hasExt = dot > slash + 1;
  const base = hasExt ? name.slice(0, dot) : name;
  const ext = hasExt ? name.slice(dot) : '';
  // (n > 1: that name is taken by another file: conflict-copy.ts)
  const suffix = `.sync-conflict-${stamp}-${device.slice(0, 7)}${n > 1 ? `.${n}` : ''}${ext}`;
  // a file name is at most NAME_MAX bytes: a long one's stem is cut (whole characters) to fit,
  // the same on every member, or the copy could never be made (ENAMETOOLONG at every retry)
  const dir = base.slice(0, slash + 1);
  let stem = base.slice(slash + 1);
  const room = NAME_MAX - Buffer.byteLength(suffix);
  if (Buffer.byteLength(stem) > room) {
    let bytes = 0;
    let keep = 0;
    for (const ch of stem) {
      bytes += Buffer.byteLength(ch);
      if (bytes > room && keep > 0) break;
      keep += ch.length;
    }
    stem = stem.slice(0, keep);
  }
  return `${dir}${stem}${suffix}`;
}

/** The longest file name (one path component) in bytes on Linux and macOS file systems. */
const NAME_MAX = 255;

export function isConflictCopy(name: string): boolean {
  return /\.sync-conflict-\d{8}-\d{6}-[0-9a-f]{7}(\.[^/]*)?$/.test(name);
}
