/**
 * The work a chunk-pool thread does, as plain functions: hash the chunks of a file range, and
 * verify-then-write one received chunk at its offset. workers/chunk-task.ts runs them in the
 * piscina pool; InlineChunkPool (pool.ts) runs the same code on the calling thread, which is the
 * baseline the benchmarks compare against.
 *
 * File reads and writes are synchronous positional calls: these run on pool threads (where
 * blocking is the point) and use each thread's own reusable read buffer.
 */
import { readSync, writeSync, openSync, closeSync, fstatSync, constants } from 'node:fs';
import { ERROR_CODES, SwarmError } from './errors.js';
import { CHUNK_HASH_BYTES, chunkHash, sameHash } from './hashing.js';
import { PACKET_PAYLOAD_BYTES } from './constants.js';
import { arena, type ChecksumArena } from './protocol/checksum-wasm.js';
import { sum16 } from './protocol/checksum.js';

export interface HashRangeTask {
  op: 'hash';
  path: string;
  /** Expected file size, mtime (ms), device and inode; a mismatch means the file changed or was swapped. */
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
  firstChunk: number;
  endChunk: number;
  chunkBytes: number;
  /** Also return the packet payload sums (hashRangeWithSums). */
  sums?: boolean;
}

export interface WriteTask {
  op: 'write';
  fd: number;
  position: number;
  /** Chunk bytes; transferred in, transferred back in the result for reuse. */
  bytes: Uint8Array;
  length: number;
  /** The chunk's BLAKE3-256 from the manifest (32 bytes). */
  expected: Uint8Array;
}

export interface WriteResult {
  ok: boolean;
  bytes: Uint8Array;
  /** Milliseconds spent hashing and writing (for `--profile`). */
  hashMs: number;
  writeMs: number;
}

let readBuffer: Buffer | null = null;
/** The read buffer lives in wasm memory where it can, so packet sums are taken where it was read. */
let readArena: ChecksumArena | null = null;

function bufferFor(n: number): Buffer {
  if (!readBuffer || readBuffer.length < n) {
    readArena = arena(n);
    readBuffer = readArena ? readArena.bytes : Buffer.allocUnsafeSlow(n);
  }
  return readBuffer;
}

/** Packets per chunk of `chunkBytes` (a chunk is a whole number of 64 KiB packets, the last one maybe short). */
export const packetsPerChunk = (chunkBytes: number): number => Math.ceil(chunkBytes / PACKET_PAYLOAD_BYTES);

/** BLAKE3 of chunks [firstChunk, endChunk) of the file, concatenated (32 bytes each). */
export function hashRange(task: HashRangeTask): Uint8Array {
  return hashRangeWithSums(task, false).hashes;
}

/**
 * The same, and the RFC 1071 sum of every 64 KiB packet payload of those chunks
 * (packetsPerChunk(chunkBytes) per chunk, in order; unused slots of a short last chunk are 0):
 * a seeder then sends packets without summing their payloads (sums add, so the header's sum is
 * combined with the stored one). Taken in the same pass, over bytes just read.
 */
export function hashRangeWithSums(task: HashRangeTask, withSums = true): { hashes: Uint8Array; sums: Uint16Array } {
  const per = packetsPerChunk(task.chunkBytes);
  const sums = new Uint16Array(withSums ? (task.endChunk - task.firstChunk) * per : 0);
  // O_NONBLOCK: a named pipe swapped in for the file must not block the open (no effect on files)
  const fd = openSync(task.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (st.dev !== task.dev || st.ino !== task.ino) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${task.path} was replaced by another file while being hashed`);
    if (st.size !== task.size || Math.floor(st.mtimeMs) !== Math.floor(task.mtimeMs)) {
      throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${task.path} changed while being hashed`);
    }
    const buf = bufferFor(task.chunkBytes);
    const out = new Uint8Array((task.endChunk - task.firstChunk) * CHUNK_HASH_BYTES);
    for (let i = task.firstChunk; i < task.endChunk; i++) {
      const start = i * task.chunkBytes;
      const len = Math.min(task.chunkBytes, task.size - start);
      let got = 0;
      while (got < len) {
        const n = readSync(fd, buf, got, len - got, start + got);
        if (n === 0) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${task.path} shrank while being hashed`);
        got += n;
      }
      out.set(chunkHash(buf.subarray(0, len)), (i - task.firstChunk) * CHUNK_HASH_BYTES);
      if (withSums) {
        for (let k = 0, at = 0; at < len; k++, at += PACKET_PAYLOAD_BYTES) {
          const payload = buf.subarray(at, Math.min(len, at + PACKET_PAYLOAD_BYTES));
          sums[(i - task.firstChunk) * per + k] = readArena?.owns(payload) ? readArena.sum16(payload) : sum16(payload);
        }
      }
    }
    return { hashes: out, sums };
  } finally {
    closeSync(fd);
  }
}

const zeroHashes = new Map<number, Uint8Array>();

/** Hash of `length` zero bytes (memoised: a file has at most two chunk lengths). */
function zeroHash(length: number): Uint8Array {
  let h = zeroHashes.get(length);
  if (!h) {
    h = chunkHash(new Uint8Array(length));
    zeroHashes.set(length, h);
  }
  return h;
}

/**
 * Hash the chunk; if it matches, write it. An all-zero chunk is not written: the part file
 * starts sparse (ftruncate) and only verified chunks are ever written to it, so that range
 * already reads as zeros, and sparse files (VM images) stay sparse.
 */
export function verifyAndWrite(task: WriteTask): WriteResult {
  // Synchronous on purpose, also where the pool is inline (the main thread): writing on libuv's
  // threadpool instead (fs.write) was measured in the head-to-head (1 GiB, 4 sources, 4 rounds
  // each way) at +0.2 CPU s/GiB and +40 MiB RSS for the same wall time, and no faster in a flash
  // crowd; on this machine the page-cache write is cheaper than the hand-off.
  const t0 = performance.now();
  const { verdict, view } = verify(task);
  const t1 = performance.now();
  if (verdict !== 'write') return { ok: verdict === 'zero', bytes: task.bytes, hashMs: t1 - t0, writeMs: 0 };
  let done = 0;
  while (done < task.length) {
    done += writeSync(task.fd, view, done, task.length - done, task.position + done);
  }
  return { ok: true, bytes: task.bytes, hashMs: t1 - t0, writeMs: performance.now() - t1 };
}

function verify(task: WriteTask): { verdict: 'bad' | 'zero' | 'write'; view: Uint8Array } {
  const view = task.bytes.subarray(0, task.length);
  const hash = chunkHash(view);
  if (!sameHash(hash, task.expected)) return { verdict: 'bad', view };
  return { verdict: sameHash(hash, zeroHash(task.length)) ? 'zero' : 'write', view };
}
