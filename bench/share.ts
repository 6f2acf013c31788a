/**
 * Sharing benchmark. Two tables:
 *  1. hashing a share of fresh random data (default 1 GiB in 8 files): MB/s with the piscina pool
 *     at 1, 2 and all threads against inline hashing on the main thread, same run, alternating;
 *     the page cache is warm after the first (uncounted) pass, so this measures CPU. Check: every
 *     configuration's content ids equal those of the first pass ("manifests agree").
 *  2. serving one client on loopback: a `swarm serve` process streams one file (default 1 GiB) to
 *     one receive-only client (bench/lib/raw-receive.ts: no hashing or writing on the client
 *     side). Check: the client counted every byte.
 * A failed check makes the exit code 1; the tables are printed either way.
 *
 *   node dist/bench/share.js [--mib 1024] [--files 8] [--runs 3] [--dir /tmp/swarm-bench]
 */
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Library, InlineChunkPool, ThreadChunkPool, type ChunkPool } from '../lib/index.js';
import { fmt, mbps, median, MiB, sizeText, spreadPct, table, UNITS } from './lib/stats.js';
import { Checks, ensureDir, makeRandomFile, removeAfterStop } from './lib/files.js';
import { runMain, startServe, timed, SWARM_BIN, type Procs } from './lib/procs.js';
import { isMain, num, parseOptions, str } from './lib/options.js';
import { Aborted, checkAborted } from './lib/wait.js';

const RAW_RECEIVE = path.join(path.dirname(SWARM_BIN), '../bench/lib/raw-receive.js');

async function hashOnce(dir: string, stateRoot: string, pool: ChunkPool): Promise<{ secs: number; cids: string }> {
  const state = path.join(stateRoot, `hash-state-${process.pid}`);
  rmSync(state, { recursive: true, force: true });
  const lib = new Library(dir, { pool, watch: false, stateDir: state });
  const t0 = process.hrtime.bigint();
  await lib.start();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lib.stop();
  rmSync(state, { recursive: true, force: true });
  return { secs, cids: lib.files().map((f) => `${f.name}=${f.cid}`).join(',') };
}

interface ShareBench {
  hashing: { name: string; secs: number[]; checks: Checks }[];
  serving: { secs: number[]; checks: Checks };
  error: string | null;
  failures: number;
}

async function shareBench(procs: Procs, signal: AbortSignal, o: { root: string; mib: number; files: number; runs: number }): Promise<ShareBench> {
  const cores = availableParallelism();
  const configs: [string, () => ChunkPool][] = [
    ['inline (main thread)', () => new InlineChunkPool()],
    ['pool, 1 thread', () => new ThreadChunkPool(1)],
    ['pool, 2 threads', () => new ThreadChunkPool(2)],
    ...(cores > 2 ? ([[`pool, ${cores} threads`, () => new ThreadChunkPool(cores)]] as [string, () => ChunkPool][]) : []),
  ];
  const res: ShareBench = { hashing: configs.map(([name]) => ({ name, secs: [], checks: new Checks() })), serving: { secs: [], checks: new Checks() }, error: null, failures: 0 };
  const share = ensureDir(path.join(o.root, 'share-bench'));
  const one = ensureDir(path.join(o.root, 'serve-one'));
  try {
    const fileBytes = Math.round((o.mib * MiB) / o.files);
    process.stderr.write(`share: writing ${o.files} × ${sizeText(fileBytes)} of fresh random data...\n`);
    for (let i = 0; i < o.files; i++) makeRandomFile(path.join(share, `part-${i}.bin`), fileBytes);
    const warm = await hashOnce(share, o.root, new InlineChunkPool()); // page cache warm for every configuration
    for (let r = 0; r < o.runs; r++) {
      for (const [i, [, make]] of configs.entries()) {
        checkAborted(signal);
        const pool = make();
        try {
          const { secs, cids } = await hashOnce(share, o.root, pool);
          if (res.hashing[i]!.checks.add(cids === warm.cids)) res.hashing[i]!.secs.push(secs);
          else process.stderr.write(`share: ${configs[i]![0]}: content ids differ from the first pass\n`);
        } finally {
          await pool.destroy();
        }
      }
    }
    rmSync(share, { recursive: true, force: true });

    const bytes = Math.round(o.mib * MiB);
    makeRandomFile(path.join(one, 'big.bin'), bytes);
    const peer = await startServe(procs, one, ['--port', '0', '--threads', '2']);
    for (let r = 0; r < o.runs; r++) {
      checkAborted(signal);
      spawnSync('sync');
      const t = await timed(procs, [process.execPath, RAW_RECEIVE, 'big.bin', `127.0.0.1:${peer.port}`], signal);
      // raw-receive exits non-zero unless it counted exactly the file's size
      const counted = t.code === 0 && t.tail.some((l) => l.includes(`"bytes":${bytes}`));
      if (res.serving.checks.add(counted)) res.serving.secs.push(t.seconds);
    }
  } catch (e) {
    res.error = e instanceof Aborted ? 'interrupted' : (e as Error).message;
  } finally {
    await removeAfterStop(procs, [share, one]);
  }
  res.failures = res.hashing.reduce((a, h) => a + h.checks.failed, 0) + res.serving.checks.failed + (res.error && !signal.aborted ? 1 : 0);
  return res;
}

function shareText(s: ShareBench, o: { mib: number; files: number; runs: number }): string {
  const inline = median(s.hashing[0]!.secs);
  const total = o.mib * MiB;
  const serve = s.serving.secs;
  return [
    `1. Hashing a ${sizeText(total)} share (${o.files} files), ${o.runs} alternating run(s) after a warm pass, medians; ${availableParallelism()} cores; ${UNITS}`,
    table(
      ['configuration', 'MB/s', 'spread', 'seconds', 'vs inline', 'manifests agree'],
      s.hashing.map((h) => [h.name, fmt(mbps(total, median(h.secs)), 0), `±${fmt(spreadPct(h.secs))}%`, fmt(median(h.secs), 2), fmt(inline / median(h.secs), 2) + '×', h.checks.toString()]),
    ),
    '',
    `2. One swarm serve process → one receive-only client, ${sizeText(total)} over loopback, ${o.runs} run(s); ${UNITS}`,
    table(['case', 'MB/s', 'spread', 'seconds', 'bytes counted'], [['serve → 1 client', fmt(mbps(total, median(serve)), 0), `±${fmt(spreadPct(serve))}%`, fmt(median(serve), 2), s.serving.checks.toString()]]),
    ...(s.failures && !s.error ? ['FAILED: see "manifests agree" and "bytes counted"'] : []),
    ...(s.error ? [s.error === 'interrupted' ? 'interrupted: the tables hold the runs that finished' : `FAILED: ${s.error}`] : []),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const o = parseOptions('node dist/bench/share.js [options]: hashing a share, serving one client', {
    mib: num(1024, 'MiB in the share (and the size of the served file)'),
    files: num(8, 'files the share is split into'),
    runs: num(3, 'counted runs'),
    dir: str('/tmp/swarm-bench', 'work folder (random data is written here)'),
  });
  runMain('share', async ({ procs, signal }) => {
    const s = await shareBench(procs, signal, { ...o, files: Math.max(1, Math.round(o.files)), root: ensureDir(o.dir) });
    console.log(shareText(s, o));
    return s.failures ? 1 : 0;
  });
}
