/**
 * Chunk hash benchmark: what checking every chunk costs with each candidate hash, on the inputs
 * swarm hashes (1 MiB chunks of random bytes), one thread, alternating runs. It is the measurement
 * behind the choice of BLAKE3 (lib/hashing.ts): the cryptographic hash swarm needs, against the
 * forgeable xxhash64 it replaced and SHA-256 from node:crypto. Each kernel first passes a known
 * answer (the hash of the empty input), so a broken binding fails the bench (exit 1) instead of
 * timing garbage.
 *
 *   node dist/bench/hash.js [--mib 2048] [--runs 5]
 */
import { createHash, randomFillSync } from 'node:crypto';
import { blake3 } from '@napi-rs/blake-hash';
import xxhash from 'xxhash-wasm';
import { fmt, GiB, median, MiB, spreadPct, table, UNITS } from './lib/stats.js';
import { isMain, num, parseOptions } from './lib/options.js';
import { runMain } from './lib/procs.js';

const USAGE = 'node dist/bench/hash.js [options]: chunk hash cost, one thread';
const OPTIONS = {
  mib: num(2048, 'MiB hashed per run and kernel'),
  runs: num(5, 'alternating counted runs, after one warm-up'),
};
const CHUNK_BYTES = 1 << 20;

interface Kernel {
  name: string;
  fn: (b: Buffer) => Uint8Array | bigint;
  /** hex digest of the empty input */
  empty: string;
}

async function kernels(): Promise<Kernel[]> {
  const x = await xxhash();
  return [
    { name: 'BLAKE3-256, native (@napi-rs/blake-hash), used', fn: (b) => blake3(b), empty: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262' },
    { name: 'SHA-256, node:crypto', fn: (b) => createHash('sha256').update(b).digest(), empty: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
    { name: 'xxhash64, wasm (xxhash-wasm), forgeable: no longer on the wire', fn: (b) => x.h64Raw(b), empty: 'ef46db3751d8e999' },
  ];
}

const hex = (d: Uint8Array | bigint) => (typeof d === 'bigint' ? d.toString(16).padStart(16, '0') : Buffer.from(d).toString('hex'));

export interface HashResult {
  rows: { name: string; secondsPerGiB: number[] }[];
  failures: number;
  text: string;
}

export async function hashCost(o: { mib: number; runs: number }, signal?: AbortSignal): Promise<HashResult> {
  const ks = await kernels();
  const failed = ks.filter((k) => hex(k.fn(Buffer.alloc(0))) !== k.empty);
  for (const k of failed) process.stderr.write(`hash: ${k.name}: wrong hash of the empty input (${hex(k.fn(Buffer.alloc(0)))}, expected ${k.empty})\n`);
  const chunks = Array.from({ length: 16 }, () => randomFillSync(Buffer.allocUnsafe(CHUNK_BYTES)));
  const n = Math.max(1, Math.round((o.mib * MiB) / CHUNK_BYTES));
  /** CPU seconds per GiB for one pass of n chunks through `fn`. */
  const secondsPerGiB = (fn: Kernel['fn']): number => {
    const c0 = process.cpuUsage();
    let sink = 0;
    for (let i = 0; i < n; i++) {
      const d = fn(chunks[i & 15]!);
      sink ^= typeof d === 'bigint' ? Number(d & 1n) : d[0]!;
    }
    const c = process.cpuUsage(c0);
    if (sink < 0) throw new Error('unreachable');
    return (c.user + c.system) / 1e6 / ((n * CHUNK_BYTES) / GiB);
  };
  for (const k of ks) secondsPerGiB(k.fn); // warm-up
  const rows = ks.map((k) => ({ name: k.name, secondsPerGiB: [] as number[] }));
  for (let r = 0; r < Math.max(1, o.runs) && !signal?.aborted; r++) ks.forEach((k, i) => rows[i]!.secondsPerGiB.push(secondsPerGiB(k.fn)));
  const base = median(rows[2]!.secondsPerGiB);
  const text = [
    `Chunk hash cost: 1 MiB random chunks, ${o.mib} MiB per run, medians of ${rows[0]!.secondsPerGiB.length} alternating runs, one thread; ${UNITS}`,
    table(
      ['hash', 'MB/s', 'CPU s/GiB', 'spread', '× xxhash64', 'known answer'],
      rows.map((r, i) => {
        const s = median(r.secondsPerGiB);
        return [r.name, fmt(GiB / 1e6 / s, 0), fmt(s, 3), `±${fmt(spreadPct(r.secondsPerGiB))}%`, fmt(s / base, 2) + '×', failed.includes(ks[i]!) ? 'WRONG' : 'ok'];
      }),
    ),
  ].join('\n');
  return { rows, failures: failed.length, text };
}

if (isMain(import.meta.url)) {
  const o = parseOptions(USAGE, OPTIONS);
  runMain('hash', async ({ signal }) => {
    const r = await hashCost(o, signal);
    console.log(r.text);
    if (r.failures) console.log(`FAILED: ${r.failures} kernel(s) gave a wrong known answer`);
    return r.failures ? 1 : 0;
  });
}
