/**
 * What is already at a download's final path, decided under the target's lock and before any data
 * is asked for: nothing; the very content (same size and mtime, or same bytes by hashing it, whose
 * mtime is then set: "already up to date"); a folder (refused); or another file (refused unless
 * the user asked to overwrite). A user's own file is never replaced silently.
 */
import { lstat, realpath, stat, unlink, utimes } from 'node:fs/promises';
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { ChunkPool } from '../pool.js';
import { partPaths } from '../storage/part-file.js';
import { Ticket } from '../storage/ticket.js';
import { chunksOf, type Manifest } from '../manifest.js';
import { CHUNK_HASH_BYTES, sameHash, hashAt } from '../hashing.js';
import type { Target } from './resolve.js';

/**
 * What is at the final path: nothing, the very content (already up to date: same size and
 * mtime, or same bytes, whose mtime is then set), or something else (refused unless overwrite).
 */
export async function whatIsThere(finalPath: string, target: Target, pool: ChunkPool, overwrite: boolean, signal: AbortSignal, warn: (message: string) => void): Promise<'none' | 'same' | 'other'> {
  const st = await lstat(finalPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!st) return 'none';
  const m = target.manifest;
  if (st.isDirectory()) throw new SwarmError(ERROR_CODES.EXISTS, `${finalPath} is a folder; nothing was downloaded (save elsewhere with -o DIR)`);
  if (st.isFile() && st.size === m.size) {
    if (Math.floor(st.mtimeMs / 1000) === target.mtime) return 'same';
    if (await sameContent(finalPath, m, pool, signal)) {
      await utimes(finalPath, target.mtime, target.mtime).catch(() => {});
      warn(`${finalPath} already holds this content; only its modification time was set`);
      return 'same';
    }
  }
  if (overwrite) {
    warn(`${finalPath} holds other content; it will be replaced when the download completes (--overwrite)`);
    return 'other';
  }
  const when = new Date(st.mtimeMs).toISOString().slice(0, 19).replace('T', ' ');
  throw new SwarmError(
    ERROR_CODES.EXISTS,
    `${finalPath} already exists with other content (${st.size} bytes, modified ${when} UTC); it was left alone: use --overwrite to replace it, or -o DIR to save elsewhere`,
  );
}

/**
 * NAME already holds this content: a part file and ticket of it are leftovers of a download
 * killed after NAME got its bytes (the part file is then NAME's other link) or of one made
 * pointless by a copy. Removed; a partial download of another version is kept.
 */
export async function tidyFinished(finalPath: string, m: Manifest, warn: (message: string) => void): Promise<void> {
  const { part, ticket } = partPaths(finalPath);
  const loaded = await Ticket.load(ticket);
  const ours = loaded.ticket !== null && loaded.ticket.cid === m.cid;
  const fin = await stat(finalPath).catch(() => null);
  const p = await lstat(part).catch(() => null);
  const sameFile = !!fin && !!p && fin.dev === p.dev && fin.ino === p.ino;
  let n = 0;
  if (p && (ours || sameFile)) await unlink(part).then(() => n++, () => {});
  if (ours) await unlink(ticket).then(() => n++, () => {});
  if (n) warn(`removed what a finished download of ${m.cid.slice(0, 16)}… left beside ${finalPath}`);
}

/** True when the file at `file` hashes, chunk by chunk, to the manifest. */
export async function sameContent(file: string, m: Manifest, pool: ChunkPool, signal: AbortSignal): Promise<boolean> {
  // the real path: the hash task checks the descriptor it opens is the file at that very path
  file = await realpath(file);
  const st = await stat(file);
  const chunks = chunksOf(m);
  const TASK = 16;
  for (let first = 0; first < chunks; first += TASK * Math.max(1, pool.threads)) {
    signal.throwIfAborted();
    const tasks: Promise<{ first: number; hashes: Uint8Array }>[] = [];
    for (let f = first; f < Math.min(chunks, first + TASK * Math.max(1, pool.threads)); f += TASK) {
      const endChunk = Math.min(chunks, f + TASK);
      tasks.push(pool.hashRange({ path: file, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino, firstChunk: f, endChunk, chunkBytes: m.chunkBytes }).then((hashes) => ({ first: f, hashes })));
    }
    for (const { first: f, hashes } of await Promise.all(tasks)) {
      for (let i = 0; i < hashes.length / CHUNK_HASH_BYTES; i++) if (!sameHash(hashAt(hashes, i), hashAt(m.hashes, f + i))) return false;
    }
  }
  return true;
}
