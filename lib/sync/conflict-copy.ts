/**
 * The conflict copy of a version this member lost (landing.ts): NAME.sync-conflict-STAMP-DEV.EXT
 * beside NAME, STAMP the version's mtime and DEV the first 7 digits of the device id of the folder
 * that MADE the version (its entry's `maker`, passed on with the file: plan.ts), so every member
 * that keeps the same losing version makes the same name, and the members end with one copy of
 * it, not one per member that lost (three members: two identical copies before). A version
 * without a maker (an index or a peer of an older build, a stock peer's file) is named after this
 * folder, as before.
 *
 * A name that is there is never replaced: when it holds the very same content (the library's
 * content id of both files, each as it is now, or else their bytes compared), the version is kept
 * already (another member made the copy, and it came here first) and no second copy is made: the
 * caller trashes and replaces the file as for any fetch. Any other file there, or a name sync is
 * fetching another version into right now, takes the next name: .2, .3 ... A maker is a peer's word: all it
 * chooses is those 7 hex digits (checked again here), never which file is replaced or skipped.
 * The copy is a hard link (a link never replaces a file that appeared since the look), and the
 * version stays at NAME too: the caller's rename of the winner over NAME is what takes it away, so
 * NAME holds one version or the other at every moment. Moved away first, a kill -9 (or a failed
 * fsync) before that rename left no file at NAME while the index called it live: restarted, the
 * member took it for deleted here and every member trashed the winner. A file system without hard
 * links gets a copy (never over a file that is there).
 */
import { constants as fsConstants, type Stats } from 'node:fs';
import { copyFile, link, lstat, open, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { Library } from '../share/library.js';
import { isDeviceId } from './device-id.js';
import type { SyncIndex } from './index-store.js';
import { conflictName, type SyncEntry } from './plan.js';

/** Names tried for one copy at most (the first, then `.2` ... `.999`). */
const MAX_NAMES = 999;
/** Bytes compared at a time when the library cannot tell the content ids. */
const COMPARE_BYTES = 1 << 20;

export interface CopyHost {
  readonly library: Library;
  readonly index: SyncIndex;
  /** This folder's device id: names the copy of a version whose maker is not known. */
  readonly deviceId: string;
}

/**
 * Keep `local`, the version of `name` here that lost a conflict, as its conflict copy. `made`:
 * the file is at `copy` too now (and the library took it there), and still at `name` until the
 * winner replaces it; false: `copy` already held the same content.
 */
export async function keepAsCopy(h: CopyHost, name: string, local: SyncEntry): Promise<{ copy: string; made: boolean }> {
  const lib = h.library;
  const file = path.join(lib.root, ...name.split('/'));
  const maker = isDeviceId(local.maker) ? local.maker : h.deviceId;
  const was = lib.statOf(name);
  const manifest = lib.manifest(name);
  const ours = await lstat(file);
  for (let n = 1; n <= MAX_NAMES; n++) {
    const copy = conflictName(name, local.mtime, maker, n);
    const to = path.join(lib.root, ...copy.split('/'));
    // a name another version is coming to (a fetch running) is taken: it would replace the copy
    // (our version coming there is taken only when the file here is known to be that version: one
    // edited since the index took it would be replaced by the fetch, in no file and no trash: hostile review 52)
    const coming = h.index.busy.get(copy);
    if (coming !== undefined && (coming !== local.cid || hashedCid(lib, { name, file, st: ours }) !== coming)) continue;
    const there = await lstat(to).catch(() => null);
    if (there) {
      if (await sameContent(lib, { name, file, st: ours }, { name: copy, file: to, st: there })) return { copy, made: false };
      continue;
    }
    if (!(await linkNoReplace(file, to))) continue;
    // the same file under its new name: the library takes it at once (counted in the "in step"
    // that follows, served and announced without a rescan), if it is still what was hashed
    const st = await stat(to).catch(() => null);
    if (st && was && manifest && st.size === was.size && st.mtimeMs === was.mtimeMs && st.ino === was.ino && st.dev === was.dev) {
      lib.adopt(copy, { size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino }, manifest);
    }
    return { copy, made: true };
  }
  throw new SwarmError(ERROR_CODES.EXISTS, `${name}: every name for its conflict copy is taken (up to .${MAX_NAMES})`);
}

/** `file` also at `to` (it stays at `file` too) unless something is there (false). */
async function linkNoReplace(file: string, to: string): Promise<boolean> {
  const err = await link(file, to).then(() => null, (e: NodeJS.ErrnoException) => e);
  if (!err) return true;
  if (err.code === 'EEXIST') return false;
  // only a file system without hard links falls back to a copy; anything else is an error of
  // the link itself (ENOENT, ENAMETOOLONG, EACCES ...), which a copy would meet too
  if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'EXDEV'].includes(err.code ?? '')) throw err;
  // no hard links on this file system: a copy, never over a file that is there
  const failed = await copyFile(file, to, fsConstants.COPYFILE_EXCL).then(() => null, (e: NodeJS.ErrnoException) => e);
  if (failed?.code === 'EEXIST') return false;
  if (failed) throw failed;
  const st = await stat(file);
  await utimes(to, st.atime, st.mtime);
  return true;
}

interface Seen {
  name: string;
  file: string;
  st: Stats;
}

/** Whether two files hold the same content: two regular files of one size, and one content id or the same bytes. */
async function sameContent(lib: Library, a: Seen, b: Seen): Promise<boolean> {
  if (!a.st.isFile() || !b.st.isFile() || a.st.size !== b.st.size) return false;
  const [ca, cb] = [hashedCid(lib, a), hashedCid(lib, b)];
  if (ca !== undefined && cb !== undefined) return ca === cb;
  return sameBytes(a.file, b.file, a.st.size);
}

/** The library's content id of the file, if the library hashed it as it is now (same size, mtime, inode). */
function hashedCid(lib: Library, s: Seen): string | undefined {
  const k = lib.statOf(s.name);
  if (!k || k.size !== s.st.size || k.mtimeMs !== s.st.mtimeMs || k.ino !== s.st.ino || k.dev !== s.st.dev) return undefined;
  return lib.stat(s.name)?.cid;
}

async function sameBytes(a: string, b: string, size: number): Promise<boolean> {
  const flags = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW;
  const fa = await open(a, flags).catch(() => null);
  const fb = await open(b, flags).catch(() => null);
  try {
    if (!fa || !fb) return false;
    const ba = Buffer.alloc(Math.min(COMPARE_BYTES, size));
    const bb = Buffer.alloc(ba.length);
    for (let at = 0; at < size; ) {
      const len = Math.min(ba.length, size - at);
      const [ra, rb] = await Promise.all([fa.read(ba, 0, len, at), fb.read(bb, 0, len, at)]);
      // (a file that shrank since its look is not the same)
      if (ra.bytesRead !== len || rb.bytesRead !== len || !ba.subarray(0, len).equals(bb.subarray(0, len))) return false;
      at += len;
    }
    // (and one that grew since is not either)
    const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
    return sa.size === size && sb.size === size;
  } finally {
    await fa?.close();
    await fb?.close();
  }
}
