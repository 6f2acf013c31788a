/**
 * File names in a share and the checks that keep requests inside it.
 *
 * A name is a relative path with '/' separators (seed 000: "share/123/456.txt is just a FILE").
 * The pure rules live in protocol/names.ts (re-exported here). `resolveInShare` also follows
 * symlinks and refuses a real path outside the share's real root.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SwarmError } from '../errors.js';

export { MAX_NAME_BYTES, nameProblem, checkName, normalizeUserName } from '../protocol/names.js';
import { checkName } from '../protocol/names.js';

/** Absolute path of `name` inside `realRoot` (already realpath'd), following symlinks safely. */
export async function resolveInShare(realRoot: string, name: string): Promise<string> {
  checkName(name);
  const joined = path.join(realRoot, ...name.split('/'));
  let real: string;
  try {
    real = await realpath(joined);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SwarmError(ERROR_CODES.NOT_FOUND, `no such file in the share: ${name}`);
    throw err;
  }
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
