/**
 * The folder key of `swarm sync`: a 256-bit secret that every member of a synced folder holds
 * (like Syncthing's shared folder, but the key is what pairs devices). It lives in
 * DIR/.swarm/sync-key (mode 0600): made with `swarm sync DIR --new-key`, brought to another
 * machine with `swarm sync DIR --key FILE` (FILE: a copy of that file), used from then on. The
 * folder id (a hash of the key, safe to show and to send) lets a peer say which folder it means.
 *
 *   # swarm sync folder key: …
 *   # folder id: 0123…
 *   <64 hex digits>
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { STATE_DIR_NAME } from '../constants.js';
import { createOnce, readState, stateFile } from './state-file.js';

export const KEY_FILE = 'sync-key';
export const KEY_BYTES = 32;

export interface FolderKey {
  readonly secret: Buffer;
  /** 32 hex digits: sent in the proof; the key cannot be learnt from it. */
  readonly id: string;
}

export function folderKey(secret: Buffer): FolderKey {
  if (secret.length !== KEY_BYTES) throw new SwarmError(ERROR_CODES.USAGE, `a folder key has ${KEY_BYTES} bytes`);
  const id = createHash('sha256').update('swarm-sync-folder-id-1\0').update(secret).digest('hex').slice(0, 32);
  return { secret: Buffer.from(secret), id };
}

export function newFolderKeySecret(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** A key file's text: comment lines, then the key as 64 hex digits. */
export function formatKey(key: FolderKey): string {
  return `# swarm sync folder key: keep it secret; whoever has it can change this folder on every member\n# folder id: ${key.id}\n${key.secret.toString('hex')}\n`;
}

/** The key in a key file's text (comments and blank lines skipped). */
export function parseKey(text: string, what: string): FolderKey {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1 || !/^[0-9a-fA-F]{64}$/.test(lines[0]!)) {
    throw new SwarmError(ERROR_CODES.USAGE, `${what} is not a swarm sync key (the key is one line of 64 hex digits, after any # comment lines; make one with swarm sync DIR --new-key)`);
  }
  return folderKey(Buffer.from(lines[0]!.toLowerCase(), 'hex'));
}

/** The folder's key, or null when it has none. */
export async function loadFolderKey(root: string): Promise<FolderKey | null> {
  const text = await readState(stateFile(root, KEY_FILE));
  return text === null ? null : parseKey(text, path.join(root, STATE_DIR_NAME, KEY_FILE));
}

/** Make a new key for the folder; SWARM_ERR_EXISTS when it has one. */
export async function createFolderKey(root: string): Promise<FolderKey> {
  const key = folderKey(newFolderKeySecret());
  if (!(await createOnce(stateFile(root, KEY_FILE), formatKey(key), 0o600))) {
    const file = path.join(root, STATE_DIR_NAME, KEY_FILE);
    const have = await loadFolderKey(root).catch(() => null);
    throw new SwarmError(ERROR_CODES.EXISTS, `${file} exists already: this folder has a key${have ? ` (folder id ${have.id})` : ''}; run without --new-key to use it, or remove the file to make another`);
  }
  return key;
}

/**
 * Take the key in `file` for the folder (kept in DIR/.swarm/sync-key from then on). The same key
 * again is fine; another key than the folder's is SWARM_ERR_EXISTS (never replaced silently).
 */
export async function importFolderKey(root: string, file: string): Promise<FolderKey> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SwarmError(ERROR_CODES.USAGE, `--key ${file}: ${(err as Error).message}`);
  }
  const key = parseKey(text, `--key ${file}`);
  for (let i = 0; i < 2; i++) {
    const have = await loadFolderKey(root);
    if (have) {
      if (have.id !== key.id) throw new SwarmError(ERROR_CODES.EXISTS, `${root} already has another key (folder id ${have.id}, not ${key.id}); remove ${path.join(root, STATE_DIR_NAME, KEY_FILE)} to change it`);
      return have;
    }
    if (await createOnce(stateFile(root, KEY_FILE), formatKey(key), 0o600)) return key;
  }
  throw new SwarmError(ERROR_CODES.IO, `cannot write ${STATE_DIR_NAME}/${KEY_FILE}`);
}
