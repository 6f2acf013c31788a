/**
 * End-to-end `swarm get` benchmark: 1, 2, 4 and 8 `swarm serve` processes on loopback sharing one
 * file of fresh random data; `swarm get` (the CLI, as a user runs it) pulls it. Reports median
 * MB/s with spread, peak RSS and CPU seconds per GiB, and checks every result byte for byte.
 * A second table compares thread layouts on 4 peers: the default (peer worker threads + piscina)
 * against everything on the main thread (the inline baseline), measured in the same run.
 *
 *   node dist/bench/get.js [--gib 1,4] [--peers 1,2,4,8] [--runs 3] [--dir /tmp/swarm-bench]
 */
import { rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { median, spreadPct, table, fmt } from './lib/stats.js';
import { ensureDir, filesEqual, makeRandomFile, startServe, stopAll, timed, SWARM_BIN, HAVE_GNU_TIME } from './lib/procs.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const SIZES_GIB = opt('gib', '1,4').split(',').map(Number);
const PEERS = opt('peers', '1,2,4,8').split(',').map(Number);
const RUNS = Number(opt('runs', '3'));
const ROOT = ensureDir(opt('dir', '/tmp/swarm-bench'));
const LAYOUTS: [string, string[]][] = [
  ['threads (default)', []],
  ['inline (main thread only)', ['--peer-threads', '0', '--threads', '0']],
];

interface Row {
  gib: number;
  peers: number;
  layout: string;
  runs: { seconds: number; mbps: number; rss: number | null; cpu: number | null }[];
}

async function main(): Promise<void> {
  const results: Row[] = [];
  for (const gib of SIZES_GIB) {
    const src = ensureDir(path.join(ROOT, `src-${gib}g`));
    const out = ensureDir(path.join(ROOT, 'out'));
    const file = path.join(src, 'big.bin');
    const bytes = gib * 2 ** 30;
    process.stderr.write(`writing ${gib} GiB of fresh random data...\n`);
    rmSync(path.join(src, '.swarm'), { recursive: true, force: true });
    makeRandomFile(file, bytes);
    const maxPeers = Math.max(...PEERS);
    const first = await startServe(src, ['--port', '0', '--threads', '2']);
    const rest = await Promise.all(Array.from({ length: maxPeers - 1 }, () => startServe(src, ['--port', '0', '--threads', '1'])));
    const ports = [first, ...rest].map((s) => s.port);
    const combos: [number, string, string[]][] = PEERS.map((n) => [n, LAYOUTS[0]![0], LAYOUTS[0]![1]]);
    if (gib === SIZES_GIB[0]) combos.push([Math.min(4, maxPeers), LAYOUTS[1]![0], LAYOUTS[1]![1]]);
    for (const [n, layout, extra] of combos) {
      const row: Row = { gib, peers: n, layout, runs: [] };
      for (let r = 0; r <= RUNS; r++) {
        // run 0 warms the serve processes' JIT and is not counted
        rmSync(path.join(out, 'big.bin'), { force: true });
        spawnSync('sync');
        const peerArgs = ports.slice(0, n).flatMap((p) => ['--peer', `127.0.0.1:${p}`]);
        const t = timed([process.execPath, SWARM_BIN, 'get', 'big.bin', ...peerArgs, '-o', out, '-q', ...extra]);
        if (t.code !== 0) throw new Error(`swarm get failed with ${t.code}`);
        if (!filesEqual(file, path.join(out, 'big.bin'))) throw new Error('downloaded bytes differ from the source');
        process.stderr.write(`  ${gib} GiB, ${n} peers, ${layout}${r === 0 ? ' (warm-up)' : ''}: ${fmt(t.seconds, 2)} s, ${t.maxRssMB ? fmt(t.maxRssMB, 0) + ' MB' : ''}\n`);
        if (r > 0) row.runs.push({ seconds: t.seconds, mbps: bytes / 2 ** 20 / t.seconds, rss: t.maxRssMB, cpu: t.cpuSeconds });
      }
      results.push(row);
    }
    rmSync(path.join(out, 'big.bin'), { force: true });
    stopAll();
    rmSync(src, { recursive: true, force: true });
  }
  const rows = results.map((r) => {
    const mbps = r.runs.map((x) => x.mbps);
    const rss = r.runs.map((x) => x.rss ?? NaN);
    const cpu = r.runs.map((x) => (x.cpu ?? NaN) / r.gib);
    return [
      `${r.gib} GiB`,
      r.peers,
      r.layout,
      fmt(median(mbps), 0),
      `±${fmt(spreadPct(mbps))}%`,
      fmt(median(r.runs.map((x) => x.seconds)) / r.gib, 2),
      HAVE_GNU_TIME ? fmt(Math.max(...rss), 0) : 'n/a',
      HAVE_GNU_TIME ? fmt(median(cpu), 2) : 'n/a',
      `${r.runs.length}/${r.runs.length}`,
    ];
  });
  console.log(`swarm get, loopback, ${RUNS} runs each, median; peers are separate swarm serve processes; node ${process.version}`);
  console.log(table(['file', 'peers', 'layout', 'MB/s', 'spread', 's/GiB', 'peak RSS MB', 'CPU s/GiB', 'bytes ok'], rows));
  const inline = results.find((r) => r.layout.startsWith('inline'));
  const threads = results.find((r) => inline && r.layout.startsWith('threads') && r.peers === inline.peers && r.gib === inline.gib);
  if (inline && threads) {
    console.log(`threads / inline speed on ${inline.peers} peers: ${fmt(median(threads.runs.map((x) => x.mbps)) / median(inline.runs.map((x) => x.mbps)), 2)}×`);
  }
  ensureDir(path.join(path.dirname(SWARM_BIN), '../../bench/results'));
  writeFileSync(path.join(path.dirname(SWARM_BIN), '../../bench/results', `get-${Date.now()}.json`), JSON.stringify(results, null, 2));
}

main().then(
  () => stopAll(),
  (err) => {
    stopAll();
    console.error(err);
    process.exitCode = 1;
  },
);
