/**
 * A download against peers that misbehave, timed and recorded: the source file (1 MiB chunks,
 * fixed mtime) and its honest manifest, fake peers torn down with the test, and `download()`,
 * which runs `get` with scaled deadlines, aborts it after a bound and returns what happened
 * (error or result, transfer time, every peer dropped and why, chunks reached).
 */
import type { Test } from 'tap';
import { utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { get } from '../../lib/download/get.js';
import { MIN_CHUNK_BYTES } from '../../lib/constants.js';
import { makeManifest, type Manifest } from '../../lib/manifest.js';
import { chunkHash } from '../../lib/hashing.js';
import { prng, randomBytes } from './prng.js';
import { tempDir } from './tmp.js';
import { startFakePeer, type FakeMode, type FakeOptions, type FakePeer } from './fake-peer.js';

export const MiB = MIN_CHUNK_BYTES;
export const MTIME = 1_700_000_000;
/** Hash and receive on the main thread: worker threads boot slowly under tap. */
const INLINE = { threads: 0, peerThreads: 0 } as const;
/** The default deadlines (first chunk 5 s, request 20 s, stall 10 s) times `f`. */
export const scaled = (f: number) => ({ firstChunkMs: 5_000 * f, requestTimeoutMs: 20_000 * f, stallMs: 10_000 * f });

export function source(t: Test, seed: number, size: number): { dir: string; file: string; data: Buffer } {
  const dir = tempDir(t);
  const data = randomBytes(prng(seed), size);
  const file = path.join(dir, 'f.bin');
  writeFileSync(file, data);
  utimesSync(file, MTIME, MTIME);
  return { dir, file, data };
}

/** The manifest of `data` in 1 MiB chunks (what an honest holder hands out). */
export function manifestOf(data: Buffer): Manifest {
  const hashes: Buffer[] = [];
  for (let at = 0; at < data.length; at += MiB) hashes.push(chunkHash(data.subarray(at, at + MiB)));
  return makeManifest(data.length, MiB, Buffer.concat(hashes));
}

export async function fake(t: Test, file: string, m: Manifest, mode: FakeMode, o: FakeOptions = {}): Promise<FakePeer & { address: string }> {
  const f = await startFakePeer(file, m, mode, { mtime: MTIME, ...o });
  t.teardown(() => f.close());
  return Object.assign(f, { address: `127.0.0.1:${f.port}` });
}

/** Runs a download of f.bin from `peers`, aborted after `limitMs` (the test then reports how far it got). */
export async function download(t: Test, peers: string[], limitMs: number, timeouts: ReturnType<typeof scaled> & { giveUpMs?: number }) {
  const out = tempDir(t);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`still running after ${limitMs} ms`)), limitMs);
  t.teardown(() => clearTimeout(timer));
  const started = Date.now();
  const p = get('f.bin', { peers, outDir: out, ...INLINE, ...timeouts, signal: abort.signal });
  const dropped: { peer: string; reason: string; at: number }[] = [];
  p.download.on('peer-dropped', (e) => dropped.push({ peer: e.peer, reason: e.reason, at: Date.now() - started }));
  let chunks = 0;
  p.download.on('progress', (e) => (chunks = Math.floor(e.bytes / MiB)));
  // the transfer's own time: from 'start' (the name resolved, every holder asked its manifest)
  let transferFrom = 0;
  p.download.on('start', () => (transferFrom = Date.now()));
  const r = await p.then(
    (done) => ({ done, error: null }),
    (error: Error) => ({ done: null, error }),
  );
  clearTimeout(timer);
  const end = Date.now();
  return { ...r, ms: end - started, transferMs: transferFrom ? end - transferFrom : Infinity, dropped, chunks, file: path.join(out, 'f.bin') };
}
