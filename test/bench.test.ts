/**
 * The benches, run as a user runs them (node dist/bench/NAME.js, child processes) in tiny
 * configurations: each must print its table, in the one unit, with every byte check passed, and
 * exit 0; a byte check made to fail on purpose (SWARM_BENCH_CORRUPT_ONE_BYTE=1 flips one byte of
 * the first downloaded copy) must show in "bytes ok" and make the exit code 1. Benches that need
 * root (network namespaces) must say why they are skipped when not root; tools that are missing
 * (aria2c, nginx, curl, opentracker, mktorrent) leave their rows out with the reason printed.
 * Every bench process is stopped by PID at teardown; each is bounded in time.
 */
import t from 'tap';

type Tap = Pick<typeof t, 'equal' | 'comment' | 'passing' | 'teardown'>;
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/tmp.js';

const BENCH_DIR = fileURLToPath(new URL('../bench/', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;
const UNIT_LINE = 'MB/s = 10^6 bytes/s';

interface BenchRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run dist/bench/NAME.js with `args` to its end (killed by PID after `timeoutMs`). */
function bench(tt: { teardown(fn: () => unknown): void }, name: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<BenchRun> {
  // never apt-get from a test: a bench leaves out the tools that are missing
  const child = spawn(process.execPath, [`${BENCH_DIR}${name}.js`, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWARM_BENCH_NO_INSTALL: '1', ...env } });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const done = new Promise<BenchRun>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() })),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  void done.then(() => clearTimeout(timer));
  tt.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return done;
  });
  return done;
}

/** The rows of the first table whose header starts with `firstColumn`, as objects by header. */
function tableRows(stdout: string, firstColumn: string): Record<string, string>[] {
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`| ${firstColumn} `));
  if (at < 0) return [];
  const cells = (l: string) => l.slice(1, -1).split('|').map((c) => c.trim());
  const headers = cells(lines[at]!);
  const rows: Record<string, string>[] = [];
  for (const l of lines.slice(at + 2)) {
    if (!l.startsWith('|')) break;
    const c = cells(l);
    rows.push(Object.fromEntries(headers.map((h, i) => [h, c[i] ?? ''])));
  }
  return rows;
}

/** "k/n" with k = n > 0 (every check passed), the transport's "(count)" allowed. */
function allPassed(s: string | undefined): boolean {
  const m = /^(\d+)\/(\d+)/.exec(s ?? '');
  return !!m && m[1] === m[2] && Number(m[2]) > 0;
}

/** Assert the exit code; when any assertion of the test failed, show what the bench printed. */
function exits(tt: Tap, r: BenchRun, code: number): void {
  tt.equal(r.code, code, `exits ${code}`);
  tt.teardown(() => {
    if (!tt.passing()) tt.comment(`exit ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr (end):\n${r.stderr.slice(-3000)}`);
  });
}

t.test('codec: random payloads, every run checked', async (t) => {
  const r = await bench(t, 'codec', ['--mib', '2', '--runs', '1']);
  exits(t, r, 0);
  t.match(r.stdout, UNIT_LINE);
  const rows = tableRows(r.stdout, 'payload');
  t.same(rows.map((x) => x.payload), ['16 KiB', '64 KiB (used)', '1024 KiB']);
  t.ok(rows.every((x) => allPassed(x['bytes ok']) && Number(x['round trip MB/s']) > 0), 'every size round-trips the source bytes');
  t.equal(tableRows(r.stdout, 'kernel').length >= 2, true, 'checksum kernel table');
});

t.test('overlay: a small network, every search found, each id handled once per peer', async (t) => {
  const r = await bench(t, 'overlay', ['--peers', '16', '--searches', '3', '--ttls', '2,4', '--results', tempDir(t)]);
  exits(t, r, 0);
  const rows = tableRows(r.stdout, 'peers');
  t.equal(rows.length, 2, 'one row per TTL');
  t.ok(rows.every((x) => x.violations === '0' && x.lost === '0'), 'no peer handled an id twice; nothing lost');
  t.equal(rows.find((x) => x.TTL === '4')?.found, '100%', 'TTL 4 reaches the holder every time');
});

t.test('sync: a tiny folder synced, bytes and mtimes checked (tools that are missing are named, not installed)', async (t) => {
  const r = await bench(t, 'sync', ['--files', '20', '--big-mib', '2', '--tools', 'swarm', '--no-install', '--dir', tempDir(t), '--results', tempDir(t)], {}, 120_000);
  exits(t, r, 0);
  const rows = tableRows(r.stdout, 'tool');
  t.ok(rows.length >= 2, 'rows for the small files and the change at least');
  t.ok(rows.filter((x) => x.tool === 'swarm').every((x) => allPassed(x['bytes ok'])), 'every swarm row has the source bytes');
});

t.test('hash: known answers and the cost table', async (t) => {
  const r = await bench(t, 'hash', ['--mib', '8', '--runs', '1']);
  exits(t, r, 0);
  const rows = tableRows(r.stdout, 'hash');
  t.equal(rows.length, 3);
  t.ok(rows.every((x) => x['known answer'] === 'ok' && Number(x['MB/s']) > 0));
});

t.test('a bad command line is refused with the usage (exit 2), not run with defaults', async (t) => {
  const r = await bench(t, 'hash', ['--gib', '2']);
  exits(t, r, 2);
  t.match(r.stderr, 'unknown option --gib');
  t.match(r.stderr, '--mib <value>');
});

t.test('compare: every tool present runs, bytes checked, missing ones named', async (t) => {
  const dir = tempDir(t);
  const r = await bench(t, 'compare', ['--mib', '4', '--rounds', '1', '--dir', dir]);
  exits(t, r, 0);
  t.match(r.stdout, UNIT_LINE);
  const rows = tableRows(r.stdout, 'tool');
  const tools = rows.map((x) => x.tool);
  for (const always of ['swarm', 'cp', 'swarm transport only']) t.ok(tools.includes(always), `${always} row`);
  for (const maybe of ['aria2c', 'curl']) {
    if (!tools.includes(maybe)) t.match(r.stdout, new RegExp(`note: .*missing \\(apt-get install -y .*\\): .*${maybe}`), `${maybe} left out with the reason`);
  }
  t.ok(rows.every((x) => allPassed(x['bytes ok'])), 'every run delivered the source bytes');
  t.same(readdirSync(dir).filter((f) => f.startsWith('h2h-')), [], 'its folders are gone');
});

t.test('get: threads and inline rows, each checked against the source', async (t) => {
  const dir = tempDir(t);
  const r = await bench(t, 'get', ['--mib', '3', '--peers', '2', '--runs', '1', '--dir', dir, '--results', dir]);
  exits(t, r, 0);
  const rows = tableRows(r.stdout, 'file');
  t.same(rows.map((x) => [x.peers, x.layout]), [['2', 'threads (default)'], ['2', 'inline (main thread only)']]);
  t.ok(rows.every((x) => x['bytes ok'] === '2/2'), 'warm-up and counted run both checked and passed');
  t.ok(readdirSync(dir).some((f) => /^get-.*\.json$/.test(f)), 'results written where asked');
});

t.test('the byte check can fail: one flipped byte shows in "bytes ok" and exits 1', async (t) => {
  const dir = tempDir(t);
  const r = await bench(t, 'get', ['--mib', '2', '--peers', '1', '--runs', '1', '--no-inline', '--dir', dir, '--results', dir], { SWARM_BENCH_CORRUPT_ONE_BYTE: '1' });
  exits(t, r, 1);
  const rows = tableRows(r.stdout, 'file');
  t.equal(rows.length, 1, 'the table is still printed');
  t.equal(rows[0]?.['bytes ok'], '1/2', 'the corrupted run is counted as failed, the other passed');
  t.match(r.stdout, /FAILED: 1 run\(s\) did not deliver the source's bytes/);
});

t.test('share: hashing configurations agree, serving counts every byte', async (t) => {
  const dir = tempDir(t);
  const r = await bench(t, 'share', ['--mib', '4', '--files', '2', '--runs', '1', '--dir', dir]);
  exits(t, r, 0);
  const hashing = tableRows(r.stdout, 'configuration');
  t.ok(hashing.length >= 3 && hashing.every((x) => allPassed(x['manifests agree'])), 'manifests agree');
  const serving = tableRows(r.stdout, 'case');
  t.equal(serving[0]?.['bytes counted'], '1/1');
});

t.test('scaling (namespaces): N=2, 4 MiB', async (t) => {
  const dir = tempDir(t);
  const r = await bench(t, 'scaling', ['--mib', '4', '--peers', '2', '--rounds', '1', '--dir', dir]);
  exits(t, r, 0);
  if (!IS_ROOT) {
    t.match(r.stdout, 'scaling bench skipped: needs root', 'says why it did not run');
    return;
  }
  const rows = tableRows(r.stdout, 'peers');
  t.equal(rows.length, 1);
  t.ok(allPassed(rows[0]?.['swarm bytes ok']) && Number(rows[0]?.['swarm MB/s']) > 0, 'swarm measured and checked');
  if (rows[0]?.['aria2c MB/s'] === '—') t.match(r.stdout, /note: .*missing/, 'aria2c left out with the reason');
  else t.ok(allPassed(rows[0]?.['aria2c bytes ok']), 'aria2c checked');
  t.same(readdirSync(dir), [], 'its folders are gone');
});

t.test('flash crowd (namespaces): N=2, 4 MiB', async (t) => {
  const dir = tempDir(t);
  const r = await bench(t, 'flash-crowd', ['--mib', '4', '--peers', '2', '--rounds', '1', '--no-link-check', '--dir', dir, '--results', dir]);
  exits(t, r, 0);
  if (!IS_ROOT) {
    t.match(r.stdout, 'flash-crowd bench skipped: needs root', 'says why it did not run');
    return;
  }
  t.match(r.stdout, UNIT_LINE);
  const rows = tableRows(r.stdout, 'N');
  t.ok(rows.some((x) => x.contender === 'swarm'), 'swarm row');
  if (!rows.some((x) => x.contender === 'aria2c')) t.match(r.stdout, /note: .*missing \(apt-get install -y .*\): aria2c left out/);
  t.ok(rows.every((x) => x['bytes ok'] === '2/2' && x['all done (s)'] !== 'not all'), 'every downloader finished with the source bytes');
  t.ok(readdirSync(dir).every((f) => !f.startsWith('flash-crowd-') || f.endsWith('.json')), 'its work folder is gone');
});

t.test('run (npm run bench): every section prints its table or why it was skipped', async (t) => {
  const dir = tempDir(t);
  // each section's bench is measured on its own above; here the suite's wiring is, at least cost
  const r = await bench(t, 'run', ['--rounds', '1', '--mib', '2', '--tools', 'cp', '--hash-mib', '8', '--no-memory', '--no-scaling', '--no-flash-crowd', '--dir', dir, '--results', dir]);
  exits(t, r, 0);
  t.match(r.stdout, `units: ${UNIT_LINE}`);
  t.same(tableRows(r.stdout, 'tool').map((x) => x.tool), ['cp']);
  t.ok(tableRows(r.stdout, 'tool').every((x) => allPassed(x['bytes ok'])));
  t.match(r.stdout, '2. memory and CPU: skipped (--no-memory)');
  t.match(r.stdout, '3. scaling: skipped (turned off with --no-scaling)');
  t.match(r.stdout, '4. flash crowd: skipped (turned off with --no-flash-crowd)');
  t.equal(tableRows(r.stdout, 'hash').length, 3);
  t.ok(existsSync(dir) && readdirSync(dir).some((f) => /^bench-.*\.svg$/.test(f)), 'json and svg written where asked');
});
