/**
 * The hashes swarm uses, and where each may be used.
 *
 * - BLAKE3-256 (`@napi-rs/blake-hash`, native, prebuilt in its npm package) for everything a peer
 *   can influence: every chunk is checked against it before it is written where it will be
 *   renamed, and the content id is BLAKE3 of the manifest. Measured on this project's 2-core VM,
 *   1 MiB inputs, one core: BLAKE3 native 5.0–7.3 GiB/s, SHA-256 (node:crypto, SHA extensions)
 *   1.2–1.6 GiB/s, BLAKE3 in wasm 0.7 GiB/s, xxhash64 (wasm) ~6–7 GiB/s. A cryptographic hash at
 *   the speed of xxhash64 leaves no reason to put a forgeable one on the wire.
 * - xxhash64 (`xxhash-wasm`) only where no adversary reaches: checksums of swarm's own state files
 *   (manifest cache, tickets), which catch a torn or damaged write on this machine.
 *
 * Both are synchronous once loaded; xxhash's wasm module loads asynchronously (`loadLocalChecksum`).
 */
import { createRequire } from 'node:module';

// required, not imported: Node's ES module loader first runs a CommonJS package through its
// export scanner, and this one (a loader that picks the platform's binary) cost 17-22 ms of CPU to
// import against 6-10 ms to require, at every start of every process (a flash crowd starts many)
const { blake3 } = createRequire(import.meta.url)('@napi-rs/blake-hash') as typeof import('@napi-rs/blake-hash');

/** Bytes of a chunk hash (BLAKE3-256). */
export const CHUNK_HASH_BYTES = 32;
/** Hex digits of a content id. */
export const CID_HEX_LENGTH = 64;
/** The name of the chunk hash, as the protocol README and `--json` output say it. */
export const CHUNK_HASH_NAME = 'blake3';

/** BLAKE3-256 of the bytes. */
export function chunkHash(bytes: Uint8Array): Buffer {
  return blake3(bytes);
}

/** The hash of chunk `i` inside a table of chunk hashes (a view, not a copy). */
export function hashAt(hashes: Uint8Array, i: number): Uint8Array {
  return hashes.subarray(i * CHUNK_HASH_BYTES, (i + 1) * CHUNK_HASH_BYTES);
}

export function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const CID_RE = /^[0-9a-f]{64}$/;

export function isContentId(v: unknown): v is string {
  return typeof v === 'string' && CID_RE.test(v);
}

/** xxhash64 of a string or bytes as 16 hex digits: for local state files only (see above). */
export type LocalChecksum = (data: string | Uint8Array) => string;

let loading: Promise<LocalChecksum> | null = null;

export function loadLocalChecksum(): Promise<LocalChecksum> {
  // loaded when first needed: a command that writes no state file does not pay for it at start
  loading ??= import('xxhash-wasm')
    .then((m) => m.default())
    .then((api) => (data: string | Uint8Array) => (typeof data === 'string' ? api.h64ToString(data) : api.h64Raw(data).toString(16).padStart(16, '0')));
  return loading;
}
