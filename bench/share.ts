/**
 * Sharing benchmark (issue: share a folder). Two tables:
 *  1. hashing a 1 GiB share of fresh random data (8 files of 128 MiB): MB/s with the piscina
 *     pool at 1, 2 and all threads against inline hashing on the main thread, same run,
 *     alternating; the page cache is warm after the first pass, so this measures CPU.
 *  2. serving one client on loopback: a `swarm serve` process streams a 1 GiB file to one
 *     receive-only client (no hashing or writing on the client side): MB/s.
 * Manifests of every configuration must agree.
 *
 *   node dist/bench/share.js [--runs 3] [--dir /tmp/swarm-bench]
 */
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Library } from '../lib/share/library.js';
import { InlineChunkPool, ThreadChunkPool, type ChunkPool } from '../lib/pool.js';
import { median, spreadPct, table, fmt } from './lib/stats.js';
import { ensureDir, makeRandomFile, startServe, stopAll, timed } from './lib/procs.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1]! : d);
const RUNS = Number(opt('runs', '3'));
const ROOT = ensureDir(opt('dir', '/tmp/swarm-bench'));
const MiB = 2 ** 20;

async function hashOnce(dir: string, pool: ChunkPool): Promise<{ secs: number; cids: string }> {
  const state = path.join(ROOT, `hash-state-${process.pid}`);
  rmSync(state, { recursive: true, force: true });
  const lib = new Library(dir, { pool, watch: false, stateDir: state });
  const t0 = process.hrtime.bigint();
  await lib.start();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lib.stop();
  rmSync(state, { recursive: true, force: true });
  return { secs, cids: lib.files().map((f) => f.cid).join(',') };
}

const share = ensureDir(path.join(ROOT, 'share-bench'));
process.stderr.write('writing 8 × 128 MiB of fresh random data...\n');
for (let i = 0; i < 8; i++) makeRandomFile(path.join(share, `part-${i}.bin`), 128 * MiB);
const cores = availableParallelism();
const configs: [string, () => ChunkPool][] = [
  ['inline (main thread)', () => new InlineChunkPool()],
  ['pool, 1 thread', () => new ThreadChunkPool(1)],
  ['pool, 2 threads', () => new ThreadChunkPool(2)],
  ...(cores > 2 ? ([[`pool, ${cores} threads`, () => new ThreadChunkPool(cores)]] as [string, () => ChunkPool][]) : []),
];
const times = new Map<string, number[]>(configs.map(([n]) => [n, []]));
let reference = '';
const warm = new InlineChunkPool();
await hashOnce(share, warm); // page cache warm for every configuration
for (let r = 0; r < RUNS; r++) {
  for (const [name, make] of configs) {
    const pool = make();
    const { secs, cids } = await hashOnce(share, pool);
    await pool.destroy();
    reference ||= cids;
    if (cids !== reference) throw new Error(`${name}: manifests differ from the other configurations`);
    times.get(name)!.push(secs);
  }
}
const inlineMed = median(times.get(configs[0]![0])!);
console.log(`1. hashing a 1 GiB share (8 files), ${RUNS} alternating runs, medians; ${cores} cores`);
console.log(
  table(
    ['configuration', 'MB/s', 'spread', 'seconds', 'vs inline'],
    configs.map(([n]) => {
      const t = times.get(n)!;
      return [n, fmt(1024 / median(t), 0), `±${fmt(spreadPct(t))}%`, fmt(median(t), 2), fmt(inlineMed / median(t), 2) + '×'];
    }),
  ),
);

// 2. serving one client
const one = ensureDir(path.join(ROOT, 'serve-one'));
makeRandomFile(path.join(one, 'big.bin'), 1024 * MiB);
const peer = await startServe(one, ['--port', '0', '--threads', '2']);
const rawReceive = path.join(path.dirname(new URL(import.meta.url).pathname), 'lib/raw-receive.js');
const serveTimes: number[] = [];
for (let r = 0; r < RUNS; r++) {
  spawnSync('sync');
  const t = timed([process.execPath, rawReceive, 'big.bin', `127.0.0.1:${peer.port}`]);
  if (t.code !== 0) throw new Error('receive failed');
  serveTimes.push(t.seconds);
}
stopAll();
console.log(`\n2. one swarm serve process → one receive-only client, 1 GiB over loopback, ${RUNS} runs (the client counts every byte)`);
console.log(table(['case', 'MB/s', 'spread', 'seconds'], [['serve → 1 client', fmt(1024 / median(serveTimes), 0), `±${fmt(spreadPct(serveTimes))}%`, fmt(median(serveTimes), 2)]]));
rmSync(share, { recursive: true, force: true });
rmSync(one, { recursive: true, force: true });
