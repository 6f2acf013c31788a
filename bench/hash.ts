/**
 * Chunk hash benchmark: what checking every chunk costs per GiB with each candidate hash, on the
 * inputs swarm hashes (1 MiB chunks of random bytes), one thread, alternating rounds. It is the
 * measurement behind the choice of BLAKE3 (lib/hashing.ts): the cryptographic hash swarm needs
 * against the forgeable xxhash64 it replaced and SHA-256 from node:crypto.
 *
 *   node dist/bench/hash.js [--gib 2] [--runs 5]
 *
 * Units: GiB/s (2^30 bytes per second) and CPU seconds per GiB hashed.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { blake3 } from '@napi-rs/blake-hash';
import xxhash from 'xxhash-wasm';
import { median, spreadPct, table, fmt } from './lib/stats.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const GIB = arg('gib', 2);
const RUNS = arg('runs', 5);
const CHUNK = 1 << 20;

const x = await xxhash();
const chunks = Array.from({ length: 16 }, () => randomFillSync(Buffer.allocUnsafe(CHUNK)));

const kernels: [string, (b: Buffer) => unknown][] = [
  ['BLAKE3-256, native (@napi-rs/blake-hash), used', (b) => blake3(b)],
  ['SHA-256, node:crypto', (b) => createHash('sha256').update(b).digest()],
  ['xxhash64, wasm (xxhash-wasm), forgeable: no longer on the wire', (b) => x.h64Raw(b)],
];

/** Seconds of CPU per GiB for one pass of `gib` GiB through `fn`. */
function secondsPerGiB(fn: (b: Buffer) => unknown): number {
  const n = (GIB << 30) / CHUNK;
  const c0 = process.cpuUsage();
  let sink = 0;
  for (let i = 0; i < n; i++) sink ^= (fn(chunks[i & 15]!) as { length?: number }).length ?? 1;
  const c = process.cpuUsage(c0);
  if (sink < 0) throw new Error('unreachable');
  return (c.user + c.system) / 1e6 / GIB;
}

for (const [, fn] of kernels) secondsPerGiB(fn); // warm-up
const samples = kernels.map(() => [] as number[]);
for (let r = 0; r < RUNS; r++) kernels.forEach(([, fn], i) => samples[i]!.push(secondsPerGiB(fn)));
const base = median(samples[2]!);
const rows = kernels.map(([name], i) => {
  const s = median(samples[i]!);
  return [name, fmt(1 / s, 2), fmt(s, 3), `±${fmt(spreadPct(samples[i]!))}%`, fmt(s / base, 2) + '×'];
});
console.log(`chunk hash cost: 1 MiB random chunks, ${GIB} GiB per run, ${RUNS} alternating runs, one thread, node ${process.version}`);
console.log(table(['hash', 'GiB/s', 'CPU s/GiB', 'spread', '× xxhash64'], rows));
