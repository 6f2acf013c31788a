/**
 * How a file is cut into chunks. Pure arithmetic.
 *
 * Chunks are 1 MiB, or the next power of two that keeps a file under MAX_CHUNKS chunks (so a
 * 1 TiB file gets 16 MiB chunks and its manifest stays at 512 KiB). 1 MiB is large enough that
 * the per-chunk costs (a hash task, a thread hand-off, a ticket bit) vanish next to the bytes,
 * matches the 1 MiB disk reads that serve at full speed, and small enough that a bad chunk is
 * cheap to fetch again and the endgame has fine-grained work to hand out.
 */
import { MAX_CHUNKS, MIN_CHUNK_BYTES } from './constants.js';

export function chunkBytesFor(size: number): number {
  let bytes = MIN_CHUNK_BYTES;
  while (Math.ceil(size / bytes) > MAX_CHUNKS) bytes *= 2;
  return bytes;
}

export function chunkCount(size: number, chunkBytes: number): number {
  return Math.ceil(size / chunkBytes);
}

/** Byte range [start, end) of chunk `index`. */
export function chunkSpan(size: number, chunkBytes: number, index: number): { start: number; end: number } {
  const start = index * chunkBytes;
  return { start, end: Math.min(size, start + chunkBytes) };
}

export function chunkLength(size: number, chunkBytes: number, index: number): number {
  const { start, end } = chunkSpan(size, chunkBytes, index);
  return end - start;
}
