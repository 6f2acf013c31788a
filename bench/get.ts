/**
 * End-to-end `swarm get` benchmark: 1, 2, 4 and 8 `swarm serve` processes on loopback sharing one
 * file of fresh random data; `swarm get` (the CLI, as a user runs it) pulls it. Reports median
 * MB/s with spread, peak RSS and CPU seconds per GiB, and checks every copy against the source's
 * SHA-256 (hashed once): "bytes ok" counts the runs that delivered the source's bytes, warm-ups
 * included; any failure makes the exit code 1, and the table is printed either way. A second row
 * compares thread layouts on 4 peers: the default (peer worker threads + piscina) against
 * everything on the main thread (the inline baseline), measured in the same run.
 *
 *   node dist/bench/get.js [--mib 1024,4096] [--peers 1,2,4,8] [--runs 3] [--no-inline]
 *                          [--dir /tmp/swarm-bench] [--results bench/results]
 */
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fmt, GiB, mbps, median, MiB, sizeText, spreadPct, table, UNITS } from './lib/stats.js';
import { Checks, ensureDir, makeRandomFile, removeAfterStop, SourceHash } from './lib/files.js';
import { runMain, startServe, timed, HAVE_GNU_TIME, SWARM_BIN, type Procs } from './lib/procs.js';
import { flag, isMain, nums, num, parseOptions, str } from './lib/options.js';
import { DEFAULT_RESULTS_DIR, shownPath, writeResults } from './lib/report.js';
import { Aborted, checkAborted } from './lib/wait.js';

const LAYOUTS: Record<string, string[]> = {
  'threads (default)': [],
  'inline (main thread only)': ['--peer-threads', '0', '--threads', '0'],
};

interface Row {
  mib: number;
  peers: number;
  layout: string;
  runs: { seconds: number; rss: number | null; cpu: number | null }[];
  checks: Checks;
}

interface GetBench {
  rows: Row[];
  error: string | null;
  failures: number;
}

async function getBench(procs: Procs, signal: AbortSignal, o: { root: string; mib: number[]; peers: number[]; runs: number; inline: boolean }): Promise<GetBench> {
  const res: GetBench = { rows: [], error: null, failures: 0 };
  const out = ensureDir(path.join(o.root, 'get-out'));
  const dest = path.join(out, 'big.bin');
  try {
    for (const mib of o.mib) {
      const src = ensureDir(path.join(o.root, `get-src-${mib}m`));
      try {
        const bytes = Math.round(mib * MiB);
        const file = path.join(src, 'big.bin');
        process.stderr.write(`get: writing ${sizeText(bytes)} of fresh random data...\n`);
        rmSync(path.join(src, '.swarm'), { recursive: true, force: true });
        makeRandomFile(file, bytes);
        const source = await SourceHash.of(file);
        const maxPeers = Math.max(...o.peers);
        const first = await startServe(procs, src, ['--port', '0', '--threads', '2']);
        const rest = await Promise.all(Array.from({ length: maxPeers - 1 }, () => startServe(procs, src, ['--port', '0', '--threads', '1'])));
        const ports = [first, ...rest].map((s) => s.port);
        const combos: [number, string][] = o.peers.map((n) => [n, 'threads (default)']);
        if (o.inline && mib === o.mib[0]) combos.push([Math.min(4, maxPeers), 'inline (main thread only)']);
        for (const [n, layout] of combos) {
          const row: Row = { mib, peers: n, layout, runs: [], checks: new Checks() };
          res.rows.push(row);
          for (let r = 0; r <= o.runs; r++) {
            // run 0 warms the serve processes' JIT and is not counted
            checkAborted(signal);
            rmSync(dest, { force: true });
            spawnSync('sync');
            const peerArgs = ports.slice(0, n).flatMap((p) => ['--peer', `127.0.0.1:${p}`]);
            const t = await timed(procs, [process.execPath, SWARM_BIN, 'get', 'big.bin', ...peerArgs, '-o', out, '-q', ...LAYOUTS[layout]!], signal);
            const ok = row.checks.add(t.code === 0 && (await source.matches(dest)));
            process.stderr.write(`  ${sizeText(bytes)}, ${n} peers, ${layout}${r === 0 ? ' (warm-up)' : ''}: ${fmt(t.seconds, 2)} s${t.maxRssMiB ? `, ${fmt(t.maxRssMiB, 0)} MiB` : ''}${ok ? '' : t.code === 0 ? ', BYTES DIFFER' : `, FAILED (exit ${t.code})`}\n`);
            if (r > 0 && t.code === 0) row.runs.push({ seconds: t.seconds, rss: t.maxRssMiB, cpu: t.cpuSeconds });
          }
        }
      } finally {
        // the seeders of this size stopped (exits awaited) before their folder goes
        await removeAfterStop(procs, [src, dest]);
      }
    }
  } catch (e) {
    res.error = e instanceof Aborted ? 'interrupted' : (e as Error).message;
  }
  rmSync(out, { recursive: true, force: true });
  res.failures = res.rows.reduce((a, r) => a + r.checks.failed, 0) + (res.error && !signal.aborted ? 1 : 0);
  return res;
}

function getText(g: GetBench, runs: number): string {
  const rows = g.rows.map((r) => {
    const bytes = r.mib * MiB;
    const rates = r.runs.map((x) => mbps(bytes, x.seconds));
    const rss = r.runs.map((x) => x.rss).filter((x): x is number => x !== null);
    const cpu = r.runs.map((x) => x.cpu).filter((x): x is number => x !== null);
    return [
      sizeText(bytes),
      r.peers,
      r.layout,
      fmt(median(rates), 0),
      `±${fmt(spreadPct(rates))}%`,
      fmt(median(r.runs.map((x) => x.seconds)) / (bytes / GiB), 2),
      HAVE_GNU_TIME && rss.length ? fmt(Math.max(...rss), 0) : '—',
      HAVE_GNU_TIME && cpu.length ? fmt(median(cpu) / (bytes / GiB), 2) : '—',
      r.checks.toString(),
    ];
  });
  const lines = [
    `swarm get over loopback from N swarm serve processes, ${runs} run(s) after a warm-up, medians; ${UNITS}`,
    table(['file', 'peers', 'layout', 'MB/s', 'spread', 's/GiB', 'peak RSS MiB', 'CPU s/GiB', 'bytes ok'], rows),
    'bytes ok: runs whose file has the source\'s SHA-256, warm-up included',
  ];
  const inline = g.rows.find((r) => r.layout.startsWith('inline') && r.runs.length);
  const threads = g.rows.find((r) => inline && r.layout.startsWith('threads') && r.peers === inline.peers && r.mib === inline.mib && r.runs.length);
  if (inline && threads) {
    const secs = (r: Row) => median(r.runs.map((x) => x.seconds));
    lines.push(`threads / inline speed on ${inline.peers} peers: ${fmt(secs(inline) / secs(threads), 2)}×`);
  }
  const failed = g.rows.reduce((a, r) => a + r.checks.failed, 0);
  if (failed) lines.push(`FAILED: ${failed} run(s) did not deliver the source's bytes`);
  if (g.error) lines.push(g.error === 'interrupted' ? 'interrupted: the table holds the runs that finished' : `FAILED: ${g.error}`);
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  const o = parseOptions('node dist/bench/get.js [options]: swarm get from 1..N local swarm serve processes', {
    mib: nums([1024, 4096], 'file sizes in MiB'),
    peers: nums([1, 2, 4, 8], 'numbers of serve processes'),
    runs: num(3, 'counted runs per row, after one warm-up'),
    'no-inline': flag('leave out the inline (main thread only) layout'),
    dir: str('/tmp/swarm-bench', 'work folder (random data is written here)'),
    results: str(DEFAULT_RESULTS_DIR, 'folder for the JSON record of the run'),
  });
  if (!o.mib.length || !o.peers.length || o.peers.some((n) => n < 1 || !Number.isInteger(n))) {
    console.error('--mib and --peers need at least one value; peers are whole numbers >= 1');
    process.exit(2);
  }
  runMain('get', async ({ procs, signal }) => {
    const started = new Date();
    const g = await getBench(procs, signal, { root: ensureDir(o.dir), mib: o.mib, peers: o.peers, runs: o.runs, inline: !o['no-inline'] });
    console.log(getText(g, o.runs));
    const file = writeResults(o.results, 'get', started, { options: o, rows: g.rows.map((r) => ({ ...r, checks: { ok: r.checks.ok, made: r.checks.made } })), error: g.error });
    console.log(`results: ${shownPath(file)}`);
    return g.failures ? 1 : 0;
  });
}
