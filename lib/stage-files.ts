/**
 * The chunk pool's third kind of work (beside hashing a file range and writing a verified chunk):
 * verify a batch of small files fetched by sync (lib/sync/small.ts) and write each one that
 * matches its content id to a new temp file, mtime set. workers/chunk-task.ts runs it on a pool
 * thread; InlineChunkPool (pool.ts) on the calling thread.
 *
 * One task carries a batch (the files a burst of socket reads finished), so a pool round trip is
 * paid per batch, not per file: sync's receiving main thread spent about a third of its time
 * hashing and staging 10,000 small files (BLAKE3, the content id, open, write, mtime), work that
 * a pool thread now does beside it. The temp file stays open: the caller flushes, closes and
 * renames it when its batch lands (lib/sync/lander.ts). Nothing is written for a file whose bytes
 * do not hash to the id asked for.
 */
import { closeSync, fstatSync, futimesSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { chunkBytesFor } from './chunking.js';
import { chunkHash } from './hashing.js';
import { contentId } from './manifest.js';
import { toWire, type WireError } from './errors.js';

export interface StageFile {
  /** The temp file to create (its folder exists and was checked by the caller). */
  tmp: string;
  /** The content id the bytes must hash to (a one-chunk manifest's). */
  cid: string;
  mtimeSec: number;
}

export interface StageTask {
  op: 'stage';
  files: StageFile[];
  /** Each file's bytes, in order; transferred to the pool thread. */
  bytes: Uint8Array[];
}

export type StageResult =
  /** Verified and written: the temp file's descriptor (open) and stat, the chunk hash. */
  | { ok: true; fd: number; hash: Uint8Array; size: number; mtimeMs: number; dev: number; ino: number }
  /** The bytes do not hash to the id: nothing written. */
  | { ok: false; mismatch: true }
  /** Verified, but the temp file could not be made: the error, and (verified) bytes back for the caller's own try. */
  | { ok: false; mismatch?: false; hash: Uint8Array; error: WireError; errno?: string; bytes: Uint8Array };

const EMPTY = new Uint8Array(0);

export function stageFiles(task: StageTask): StageResult[] {
  return task.files.map((f, i) => stageOne(f, task.bytes[i] ?? EMPTY));
}

function stageOne(f: StageFile, data: Uint8Array): StageResult {
  const hash = data.length === 0 ? EMPTY : new Uint8Array(chunkHash(data));
  if (contentId(data.length, chunkBytesFor(data.length), hash) !== f.cid) return { ok: false, mismatch: true };
  try {
    const fd = openSync(f.tmp, 'wx');
    return { ok: true, fd, hash, ...writeTemp(fd, f.tmp, data, f.mtimeSec) };
  } catch (err) {
    return { ok: false, hash, error: toWire(err), errno: (err as NodeJS.ErrnoException).code, bytes: data };
  }
}

/**
 * Fill the temp file `tmp`, just created as `fd`, with `data` and set its mtime (seconds): its
 * stat. On failure it is closed and removed, and the error thrown (also for lander.ts's own stage).
 */
export function writeTemp(fd: number, tmp: string, data: Uint8Array, mtimeSec: number): { size: number; mtimeMs: number; dev: number; ino: number } {
  try {
    for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at, at);
    futimesSync(fd, mtimeSec, mtimeSec);
    const st = fstatSync(fd);
    return { size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino };
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
    try {
      unlinkSync(tmp);
    } catch {
      // gone already
    }
    throw err;
  }
}
