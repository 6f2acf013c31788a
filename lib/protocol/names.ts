/**
 * File names as the wire carries them, and the rules every name must pass. Pure.
 *
 * A name is a relative path with '/' separators (seed 000: "share/123/456.txt is just a FILE").
 * Refused: empty, over-long, absolute, '.', '..' or empty segments, backslashes (a separator
 * on Windows peers), NUL and control bytes. The same rules apply to names a peer announces, names
 * in a tracker's directory, names a user types, and names the scanner finds; a name that fails is
 * dropped with a warning, never the whole message it came in.
 */
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

/**
 * A name as a person typed it: leading "./" segments (what tab completion gives) are dropped,
 * then the name must pass `checkName`.
 */
export function normalizeUserName(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2).replace(/^\/+/, '');
  return checkName(n);
}
