/**
 * Manifests: a file's size, mtime, chunk size and per-chunk xxhash64, and its content id.
 *
 * The content id is xxhash64 over "size:chunkBytes:" followed by the chunk hashes; it names
 * one exact content, so two peers with the same cid hold the same bytes whatever their mtimes.
 * On the wire the hashes travel as a binary body of u64 big-endian values (8 bytes per chunk)
 * after a `manifest-ok` header. Pure, apart from the hasher it is given.
 */
import { ERROR_CODES, SwarmError } from './errors.js';
import { MAX_CHUNK_BYTES, MIN_CHUNK_BYTES } from './constants.js';
import { chunkCount } from './chunking.js';
import type { Hasher } from './hashing.js';
import type { Manifest } from './types.js';

export function contentId(hasher: Hasher, size: number, chunkBytes: number, hashes: string[]): string {
  return hasher.text(`${size}:${chunkBytes}:${hashes.join('')}`);
}

export function makeManifest(hasher: Hasher, name: string, size: number, mtime: number, chunkBytes: number, hashes: string[]): Manifest {
  return { name, size, mtime, chunkBytes, hashes, cid: contentId(hasher, size, chunkBytes, hashes) };
}

/** Hash table as the body of a manifest-ok frame. */
export function encodeHashes(hashes: string[]): Buffer {
  const body = Buffer.allocUnsafe(hashes.length * 8);
  hashes.forEach((h, i) => body.writeBigUInt64BE(BigInt('0x' + h), i * 8));
  return body;
}

export function decodeHashes(body: Buffer, count: number): string[] {
  if (body.length !== count * 8) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `manifest body holds ${body.length} bytes for ${count} chunks`);
  const out = new Array<string>(count);
  for (let i = 0; i < count; i++) out[i] = body.readBigUInt64BE(i * 8).toString(16).padStart(16, '0');
  return out;
}

/**
 * Build a manifest from a `manifest-ok` header and body and check it: sane sizes, the hash count
 * that matches size/chunkBytes, and a content id that matches what `expectCid` says (the tracker).
 */
export function manifestFromWire(
  hasher: Hasher,
  header: { name: string; size: number; mtime: number; chunkBytes: number; cid: string; chunks: number },
  body: Buffer,
  expectCid?: string,
): Manifest {
  const { name, size, mtime, chunkBytes, chunks } = header;
  if (chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES || (chunkBytes & (chunkBytes - 1)) !== 0) {
    throw new SwarmError(ERROR_CODES.MANIFEST_MISMATCH, `manifest for ${name} has an unusable chunk size ${chunkBytes}`);
  }
  if (chunks !== chunkCount(size, chunkBytes)) {
    throw new SwarmError(ERROR_CODES.MANIFEST_MISMATCH, `manifest for ${name} lists ${chunks} chunks, size says ${chunkCount(size, chunkBytes)}`);
  }
  const hashes = decodeHashes(body, chunks);
  const m = makeManifest(hasher, name, size, mtime, chunkBytes, hashes);
  if (m.cid !== header.cid) throw new SwarmError(ERROR_CODES.MANIFEST_MISMATCH, `manifest for ${name} does not match its own content id`);
  if (expectCid !== undefined && m.cid !== expectCid) {
    throw new SwarmError(ERROR_CODES.MANIFEST_MISMATCH, `manifest for ${name} has content id ${m.cid}, the directory says ${expectCid}`);
  }
  return m;
}
