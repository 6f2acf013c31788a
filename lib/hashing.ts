/**
 * xxhash64 of chunks and content ids (xxhash-wasm). Initialising the wasm module is async, so
 * callers `await loadHasher()` once (per thread) and then hash synchronously.
 */
import xxhash from 'xxhash-wasm';

export interface Hasher {
  /** xxhash64 of the bytes as 16 lowercase hex digits. */
  chunk(bytes: Uint8Array): string;
  /** xxhash64 of a string (UTF-8), as 16 hex digits. */
  text(s: string): string;
}

let loading: Promise<Hasher> | null = null;

export function loadHasher(): Promise<Hasher> {
  loading ??= xxhash().then((api) => ({
    chunk: (bytes: Uint8Array) => api.h64Raw(bytes).toString(16).padStart(16, '0'),
    text: (s: string) => api.h64ToString(s),
  }));
  return loading;
}
