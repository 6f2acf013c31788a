/**
 * Manifests: what a content id pins. A manifest is the file's size, its chunk size and the
 * BLAKE3-256 of every chunk; the content id (cid) is BLAKE3-256 of the manifest's canonical bytes:
 *
 *   "swarm-manifest-v2\n" | u64 BE size | u32 BE chunkBytes | chunk hashes (32 bytes each)
 *
 * so a cid from a tracker or a user fixes every byte of the file. A manifest received from a peer
 * is accepted only if it hashes to the cid it was asked for (`manifestFromWire`); names and mtimes
 * are not part of it (they describe where a content lives, not what it is). On the wire the hashes
 * are the binary body of a `manifest-ok` frame. Pure.
 */
import { ERROR_CODES, SwarmError } from './errors.js';
import { MAX_CHUNK_BYTES, MAX_FILE_BYTES, MIN_CHUNK_BYTES } from './constants.js';
import { chunkBytesFor, chunkCount } from './chunking.js';
import { CHUNK_HASH_BYTES, chunkHash, hashAt } from './hashing.js';

export interface Manifest {
  /** Content id: 64 hex digits. */
  cid: string;
  size: number;
  chunkBytes: number;
  /** Chunk hashes, CHUNK_HASH_BYTES each, in chunk order. */
  hashes: Buffer;
}

const DOMAIN = Buffer.from('swarm-manifest-v2\n');

export function contentId(size: number, chunkBytes: number, hashes: Uint8Array): string {
  const head = Buffer.allocUnsafe(DOMAIN.length + 12);
  DOMAIN.copy(head, 0);
  head.writeBigUInt64BE(BigInt(size), DOMAIN.length);
  head.writeUInt32BE(chunkBytes, DOMAIN.length + 8);
  return chunkHash(Buffer.concat([head, hashes])).toString('hex');
}

export function makeManifest(size: number, chunkBytes: number, hashes: Buffer): Manifest {
  return { cid: contentId(size, chunkBytes, hashes), size, chunkBytes, hashes };
}

export function chunksOf(m: Pick<Manifest, 'size' | 'chunkBytes'>): number {
  return chunkCount(m.size, m.chunkBytes);
}

/** The expected hash of chunk i. */
export function expectedHash(m: Manifest, i: number): Uint8Array {
  return hashAt(m.hashes, i);
}

/**
 * Build a manifest from a `manifest-ok` header and body and check it: a size swarm can hold, the
 * chunk size swarm would choose for that size, the hash count that matches, and above all a
 * content id equal to `expectCid` (what the download was resolved to).
 */
export function manifestFromWire(header: { cid: string; size: number; chunkBytes: number; chunks: number }, body: Buffer, expectCid: string): Manifest {
  const { size, chunkBytes, chunks } = header;
  if (size > MAX_FILE_BYTES) throw new SwarmError(ERROR_CODES.MANIFEST_MISMATCH, `manifest declares ${size} bytes, more than swarm handles (${MAX_FILE_BYTES})`);
  if (chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES || chunkBytes !== chunkBytesFor(size)) {
    throw new SwarmError(ERROR_CODES.MANIFEST_MISMATCH, `manifest has chunk size ${chunkBytes}; a file of ${size} bytes uses ${chunkBytesFor(size)}`);
  }
  if (chunks !== chunkCount(size, chunkBytes)) {
    throw new SwarmError(ERROR_CODES.MANIFEST_MISMATCH, `manifest lists ${chunks} chunks, its size says ${chunkCount(size, chunkBytes)}`);
  }
  if (body.length !== chunks * CHUNK_HASH_BYTES) throw new SwarmError(ERROR_CODES.MANIFEST_MISMATCH, `manifest body holds ${body.length} bytes for ${chunks} chunks`);
  const hashes = Buffer.from(body); // own the bytes: the body may be a view of a reused buffer
  const m = makeManifest(size, chunkBytes, hashes);
  if (m.cid !== expectCid) throw new SwarmError(ERROR_CODES.MANIFEST_MISMATCH, `manifest hashes to content id ${m.cid.slice(0, 16)}…, asked for ${expectCid.slice(0, 16)}…`);
  return m;
}
