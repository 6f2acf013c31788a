/**
 * File names in a share and the checks that keep requests inside it.
 *
 * A name is a relative path with '/' separators (seed 000: "share/123/456.txt is just a FILE").
 * The pure rules live in protocol/names.ts (re-exported here). `resolveInShare` also follows
 * symlinks and refuses a real path outside the share's real root.
 */
import { realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { LOCK_SUFFIX, PART_SUFFIX, STATE_DIR_NAME, TEMP_MARK, TICKET_SUFFIX } from '../constants.js';

export { MAX_NAME_BYTES, nameProblem, checkName, normalizeUserName } from '../protocol/names.js';
import { checkName } from '../protocol/names.js';

/** Absolute path of `name` inside `realRoot` (already realpath'd), following symlinks safely. */
export async function resolveInShare(realRoot: string, name: string): Promise<string> {
  checkName(name);
  let real: string;
  try {
    real = await realpath(path.join(realRoot, ...name.split('/')));
  } catch (err) {
    throw resolveError(err, name);
  }
  return insideOrRefused(realRoot, real, name);
}

/**
 * The same, synchronously (realpath(3) on the calling thread): for the serving path, where the
 * folders of a shared file were just walked by the scan and their entries are in memory, so the
 * call takes microseconds and a thread-pool round trip would cost more than the work.
 */
export function resolveInShareSync(realRoot: string, name: string): string {
  checkName(name);
  let real: string;
  try {
    real = realpathSync.native(path.join(realRoot, ...name.split('/')));
  } catch (err) {
    throw resolveError(err, name);
  }
  return insideOrRefused(realRoot, real, name);
}

/** How long a folder's real path is reused, and how many folders are remembered at most. */
const FOLDER_REAL_MS = 1_000;
const MAX_FOLDER_REALS = 4_096;
const folderReals = new Map<string, { real: string; at: number }>();

/**
 * Where to open `name` for serving: its folder's real path (realpath(3) once per folder for up to
 * FOLDER_REAL_MS, not once per file: realpath reads every segment's link, and was 16% of a sync
 * source's CPU serving 10,000 small files) joined with its last segment, which the caller opens
 * with O_NOFOLLOW and, should that segment be a symlink (ELOOP), resolves with resolveInShareSync.
 * A folder swapped for a symlink within that second is not caught here, as it was not between
 * realpath and open before: the caller checks what the descriptor reached (file-source.ts).
 */
export function folderPathInShareSync(realRoot: string, name: string, now = Date.now()): string {
  checkName(name);
  const cut = name.lastIndexOf('/');
  if (cut < 0) return path.join(realRoot, name);
  const dir = name.slice(0, cut);
  const key = `${realRoot}\0${dir}`;
  let known = folderReals.get(key);
  if (!known || now - known.at > FOLDER_REAL_MS) {
    let real: string;
    try {
      real = realpathSync.native(path.join(realRoot, ...dir.split('/')));
    } catch (err) {
      throw resolveError(err, name);
    }
    insideOrRefused(realRoot, real, name);
    if (folderReals.size >= MAX_FOLDER_REALS) folderReals.clear();
    folderReals.set(key, (known = { real, at: now }));
  }
  return path.join(known.real, name.slice(cut + 1));
}

function resolveError(err: unknown, name: string): unknown {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new SwarmError(ERROR_CODES.NOT_FOUND, `no such file in the share: ${name}`);
  return err;
}

function insideOrRefused(realRoot: string, real: string, name: string): string {
  if (!isInside(realRoot, real)) throw new SwarmError(ERROR_CODES.PATH_ESCAPE, `refused name ${JSON.stringify(name)}: a symlink leads outside the share`);
  return real;
}

export function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Relative OS path to a share name ('/' separators). */
export function toName(rel: string): string {
  return rel.split(path.sep).join('/');
}

/** A name swarm itself makes beside shared files (part file, ticket, lock, temp file): never shared. */
export function isOwnFile(name: string): boolean {
  return name.endsWith(PART_SUFFIX) || name.endsWith(TICKET_SUFFIX) || name.includes(LOCK_SUFFIX) || name.includes(TEMP_MARK);
}

/**
 * Why `name` (relative, `/`-separated) can never be a shared file, or null: it lies in the state
 * folder (DIR/.swarm/: keys, locks, indexes) or is one of swarm's own files (part files, tickets,
 * locks, temp files). A name from a peer that sync would write must pass this as well as
 * nameProblem(): else a peer could write our lock or our index.
 */
export function notSharedName(name: string): string | null {
  if (name === STATE_DIR_NAME || name.startsWith(`${STATE_DIR_NAME}/`)) return `inside ${STATE_DIR_NAME}/ (swarm's state)`;
  if (isOwnFile(name.slice(name.lastIndexOf('/') + 1))) return "one of swarm's own file names (part file, ticket, lock or temp file)";
  return null;
}
