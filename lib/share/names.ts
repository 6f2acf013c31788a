/**
 * File names in a share and the checks that keep requests inside it.
 *
 * A name is a relative path with '/' separators (seed 000: "share/123/456.txt is just a FILE").
 * `checkName` is pure and refuses what could escape or confuse: empty, absolute, '.', '..',
 * empty segments, backslashes, NUL and control bytes, over-long names. `resolveInShare` also
 * follows symlinks and refuses a real path outside the share's real root.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SwarmError } from '../errors.js';

export const MAX_NAME_BYTES = 4096;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function nameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'empty name';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return 'name too long';
  if (CONTROL.test(name)) return 'control or NUL byte in name';
  if (name.includes('\\')) return 'backslash in name';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'absolute path';
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return `bad path segment "${seg}"`;
  }
  return null;
}

export function checkName(name: unknown): string {
  const problem = nameProblem(name);
  if (problem) throw new SwarmError(ERROR_CODES.PATH_ESCAPE, `refused name ${JSON.stringify(String(name)).slice(0, 200)}: ${problem}`);
  return name as string;
}

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
