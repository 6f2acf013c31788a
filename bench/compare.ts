/**
 * Head-to-head on loopback, 4 sources: `swarm get` from 4 `swarm serve` processes; aria2c from
 * 4 nginx server blocks serving the same file (best settings found: -s16 -x4 -k1M); curl from one
 * of them; `cp` of the file (the local copy limit); and swarm's transport alone (receive and count
 * only, bench/lib/raw-receive.ts). Tools run alternately (A B C D, A B C D, ...) so drift hits all
 * alike, after one uncounted warm-up round; `sync` runs before each so no run pays for the last
 * one's writeback. Every copy's SHA-256 is compared with the source's (hashed once); a run that
 * fails or delivers other bytes is counted in "bytes ok" and makes the exit code 1, and the table
 * is printed either way. swarm fsyncs the file before renaming it; aria2c, curl and cp do not
 * (their writeback happens after they exit), which favours them.
 *
 * Exported for bench/run.ts; also runs alone:
 *   node dist/bench/compare.js [--mib 1024] [--rounds 5] [--tools swarm,aria2c,...] [--dir /tmp/swarm-bench]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fmt, GiB, mbps, median, MiB, sizeText, spreadPct, table, UNITS } from './lib/stats.js';
import { Checks, ensureDir, makeRandomFile, removeAfterStop, SourceHash } from './lib/files.js';
import { runMain, startServe, timed, SWARM_BIN, type Procs } from './lib/procs.js';
import { startNginx, type Nginx } from './lib/nginx.js';
import { installMissing, missingText } from './lib/tools.js';
import { flag, isMain, num, oneOf, parseOptions, str } from './lib/options.js';
import { holdFreePages } from './lib/vm-pages.js';
import { Aborted, checkAborted } from './lib/wait.js';
import { measureFloors, type Floors } from './lib/floors.js';
import { availableParallelism } from 'node:os';

export const ARIA2_ARGS = ['-s16', '-x4', '-k1M', '--file-allocation=none', '-q', '--allow-overwrite=true', '--auto-file-renaming=false'];
export const H2H_TOOLS = ['swarm', 'swarm-copy', 'aria2c', 'aria2c-sha256', 'curl', 'cp', 'transport'] as const;
export type H2HTool = (typeof H2H_TOOLS)[number];
const TRANSPORT = 'transport';
/** The name in tables. */
/** swarm-copy: the same get from seeders that copy through memory (SWARM_NO_SENDFILE=1), for the kernel path's share */
const COPY = 'swarm-copy';
export const toolLabel = (t: H2HTool): string =>
  t === TRANSPORT ? 'swarm transport only' : t === 'aria2c-sha256' ? 'aria2c + SHA-256 check' : t === COPY ? 'swarm, seeders copy (no sendfile)' : t;
const RAW_RECEIVE = path.join(path.dirname(SWARM_BIN), '../bench/lib/raw-receive.js');

export interface ToolResult {
  tool: H2HTool;
  bytes: number;
  /** counted rounds that succeeded */
  seconds: number[];
  rssMiB: (number | null)[];
  cpu: (number | null)[];
  /** CPU seconds of the serving side (the 4 swarm seeders, or nginx) during each counted run; null: none (cp) */
  seederCpu: (number | null)[];
  /** every run, the warm-up included: SHA-256 equal (the transport: every byte counted) */
  checks: Checks;
}

export interface HeadToHead {
  results: ToolResult[];
  notes: string[];
  /** what stopped the run early, if anything */
  error: string | null;
  failures: number;
  /** the machine's floors (bench/lib/floors.ts), measured after the rounds when swarm ran */
  floors: Floors | null;
}

/** The tools of `wanted` that can run here, and notes on those that cannot. */
export function usableTools(wanted: readonly H2HTool[]): { tools: H2HTool[]; notes: string[] } {
  const needs: Partial<Record<H2HTool, string[]>> = { aria2c: ['aria2c', 'nginx'], 'aria2c-sha256': ['aria2c', 'nginx'], curl: ['curl', 'nginx'] };
  const missing = installMissing([...new Set(wanted.flatMap((t) => needs[t] ?? []))]);
  const tools = wanted.filter((t) => !(needs[t] ?? []).some((x) => missing.includes(x)));
  const left = wanted.filter((t) => !tools.includes(t));
  return { tools, notes: left.length ? [`${missingText(missing)}: ${left.join(', ')} left out`] : [] };
}

export async function headToHead(procs: Procs, signal: AbortSignal, o: { root: string; mib: number; rounds: number; tools?: readonly H2HTool[] }): Promise<HeadToHead> {
  const bytes = Math.round(o.mib * MiB);
  const { tools, notes } = usableTools(o.tools ?? H2H_TOOLS);
  const out: HeadToHead = { results: tools.map((tool) => ({ tool, bytes, seconds: [], rssMiB: [], cpu: [], seederCpu: [], checks: new Checks() })), notes, error: null, failures: 0, floors: null };
  const src = ensureDir(path.join(o.root, `h2h-src-${o.mib}m`));
  const dest = path.join(ensureDir(path.join(o.root, 'h2h-out')), 'big.bin');
  const file = path.join(src, 'big.bin');
  const nginxDir = path.join(o.root, 'h2h-nginx');
  try {
    process.stderr.write(`head-to-head: writing ${sizeText(bytes)} of fresh random data...\n`);
    rmSync(path.join(src, '.swarm'), { recursive: true, force: true });
    makeRandomFile(file, bytes);
    const source = await SourceHash.of(file);
    let peers: string[] = [];
    let seeders: number[] = [];
    let copyPeers: string[] = [];
    let copySeeders: number[] = [];
    if (tools.includes(COPY)) {
      // first, so that their manifest cache is the one the others find (the same file either way)
      const started = [];
      for (let i = 0; i < 4; i++) started.push(await startServe(procs, src, ['--port', '0', '--threads', i === 0 ? '2' : '1'], ['env', 'SWARM_NO_SENDFILE=1']));
      copyPeers = started.map((s) => `127.0.0.1:${s.port}`);
      copySeeders = started.map((s) => s.proc.pid);
    }
    if (tools.includes('swarm') || tools.includes(TRANSPORT)) {
      // the first seeder hashes; the others then find its manifest cache
      const first = await startServe(procs, src, ['--port', '0', '--threads', '2']);
      const rest = await Promise.all([0, 1, 2].map(() => startServe(procs, src, ['--port', '0', '--threads', '1'])));
      peers = [first, ...rest].map((s) => `127.0.0.1:${s.port}`);
      seeders = [first, ...rest].map((s) => s.proc.pid);
    }
    let nginx: Nginx | null = null;
    if (tools.some((t) => t === 'aria2c' || t === 'aria2c-sha256' || t === 'curl')) nginx = await startNginx(procs, { root: src, servers: 4, prefix: ensureDir(nginxDir) });
    const urls = nginx?.urls('big.bin') ?? [];
    const argv: Record<H2HTool, () => string[]> = {
      swarm: () => [process.execPath, SWARM_BIN, 'get', 'big.bin', ...peers.flatMap((p) => ['--peer', p]), '-o', path.dirname(dest), '-q'],
      [COPY]: () => [process.execPath, SWARM_BIN, 'get', 'big.bin', ...copyPeers.flatMap((p) => ['--peer', p]), '-o', path.dirname(dest), '-q'],
      aria2c: () => ['aria2c', ...ARIA2_ARGS, '-d', path.dirname(dest), '-o', 'big.bin', ...urls],
      // aria2c checks the whole file against the digest once it has it (its way of verifying)
      'aria2c-sha256': () => ['aria2c', ...ARIA2_ARGS, `--checksum=sha-256=${source.sha256}`, '-d', path.dirname(dest), '-o', 'big.bin', ...urls],
      curl: () => ['curl', '-s', '-o', dest, urls[0]!],
      cp: () => ['cp', file, dest],
      [TRANSPORT]: () => [process.execPath, RAW_RECEIVE, 'big.bin', ...peers],
    };
    // round 0 is a warm-up for every tool (JIT of the swarm processes, nginx's and the page
    // cache's first touch) and is not counted
    for (let r = 0; r <= o.rounds; r++) {
      for (const res of out.results) {
        checkAborted(signal);
        rmSync(dest, { force: true });
        rmSync(dest + '.aria2', { force: true });
        spawnSync('sync');
        const servers = res.tool === 'swarm' || res.tool === TRANSPORT ? seeders : res.tool === COPY ? copySeeders : res.tool === 'cp' || !nginx ? [] : withChildren(nginx.proc.pid);
        const before = cpuOf(servers);
        const t = await timed(procs, argv[res.tool](), signal);
        const seederCpu = servers.length ? cpuOf(servers) - before : null;
        const ok = res.checks.add(res.tool === TRANSPORT ? t.code === 0 : t.code === 0 && (await source.matches(dest)));
        process.stderr.write(`  ${r === 0 ? 'warm-up' : `round ${r}`}: ${toolLabel(res.tool)} ${fmt(t.seconds, 2)} s${t.maxRssMiB ? `, ${fmt(t.maxRssMiB, 0)} MiB` : ''}${ok ? '' : t.code === 0 ? ', BYTES DIFFER' : `, FAILED (exit ${t.code})`}\n`);
        if (r === 0 || t.code !== 0) continue;
        res.seconds.push(t.seconds);
        res.rssMiB.push(t.maxRssMiB);
        res.cpu.push(t.cpuSeconds);
        res.seederCpu.push(seederCpu);
      }
    }
    if (tools.includes('swarm')) {
      checkAborted(signal);
      process.stderr.write('  floors: a bare Node seeder, a page-cache write, BLAKE3, each alone...\n');
      out.floors = await measureFloors(file, path.dirname(dest));
    }
  } catch (e) {
    out.error = e instanceof Aborted ? 'interrupted' : (e as Error).message;
  } finally {
    // every seeder and mirror stopped (exits awaited) before their folder goes
    await removeAfterStop(procs, [src, path.dirname(dest), nginxDir]);
  }
  out.failures = out.results.reduce((a, r) => a + r.checks.failed, 0) + (out.error && !signal.aborted ? 1 : 0);
  return out;
}

export function summarize(r: ToolResult): { medianS: number; spread: number; mbps: number; sPerGiB: number; rss: number | null; cpuPerGiB: number | null; seederCpuPerGiB: number | null } {
  const m = median(r.seconds);
  const rss = r.rssMiB.filter((x): x is number => x !== null);
  const cpu = r.cpu.filter((x): x is number => x !== null);
  const seeder = (r.seederCpu ?? []).filter((x): x is number => x !== null);
  return {
    medianS: m,
    spread: spreadPct(r.seconds),
    mbps: mbps(r.bytes, m),
    sPerGiB: m / (r.bytes / GiB),
    rss: rss.length ? Math.max(...rss) : null,
    cpuPerGiB: cpu.length ? median(cpu) / (r.bytes / GiB) : null,
    seederCpuPerGiB: seeder.length ? median(seeder) / (r.bytes / GiB) : null,
  };
}

/** The head-to-head table with its header line and the time ratios. */
export function headToHeadText(h: HeadToHead, o: { mib: number; rounds: number }): string {
  const rows = h.results.map((r) => {
    const s = summarize(r);
    return [toolLabel(r.tool), fmt(s.sPerGiB, 2), `±${fmt(s.spread)}%`, fmt(s.mbps, 0), fmt(s.rss, 0), fmt(s.cpuPerGiB, 2), fmt(s.seederCpuPerGiB, 2), `${r.checks}${r.tool === TRANSPORT ? ' (count)' : ''}`];
  });
  const sw = h.results.find((r) => r.tool === 'swarm');
  const ratios = h.results
    .filter((r) => r !== sw && sw?.seconds.length && r.seconds.length)
    .map((r) => `swarm/${toolLabel(r.tool)} ${fmt(summarize(sw!).medianS / summarize(r).medianS, 2)}×`);
  return [
    `Head-to-head: ${sizeText(o.mib * MiB)} over loopback from 4 sources, ${o.rounds} alternating round(s) after a warm-up, medians; ${UNITS}`,
    table(['tool', 's/GiB', 'spread', 'MB/s', 'peak RSS MiB', 'client CPU s/GiB', 'seeder CPU s/GiB', 'bytes ok'], rows),
    `client CPU: user+sys of the downloading process; seeder CPU: of the serving processes during the run (the 4 swarm serves, or nginx's master and worker), all their threads
bytes ok: runs whose copy has the source's SHA-256, warm-up included (the transport keeps no copy: its byte count)${ratios.length ? `\ntime ${ratios.join('   ')}` : ''}`,
    ...(h.floors ? [floorsText(h)] : []),
    ...h.notes.map((n) => `note: ${n}`),
    ...(h.results.some((r) => r.checks.failed) ? [`FAILED: ${h.results.reduce((a, r) => a + r.checks.failed, 0)} run(s) did not deliver the source's bytes`] : []),
    ...(h.error ? [h.error === 'interrupted' ? 'interrupted: the table holds the rounds that finished' : `FAILED: ${h.error}`] : []),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const o = parseOptions('node dist/bench/compare.js [options]: swarm against aria2c, curl and cp over loopback', {
    mib: num(1024, 'file size in MiB'),
    rounds: num(5, 'counted rounds, after one warm-up'),
    tools: oneOf(H2H_TOOLS, [...H2H_TOOLS], 'tools to run'),
    dir: str('/tmp/swarm-bench', 'work folder (random data is written here)'),
    'hold-pages': flag('a VM: turn free page reporting off during the run, restored at exit (bench/lib/vm-pages.ts; root)'),
  });
  runMain('compare', async ({ procs, signal }) => {
    const held = o['hold-pages'] ? holdFreePages() : null;
    const h = await headToHead(procs, signal, { root: ensureDir(o.dir), mib: o.mib, rounds: o.rounds, tools: o.tools });
    if (held) h.notes.push(held);
    console.log(headToHeadText(h, o));
    return h.failures ? 1 : 0;
  });
}

/**
 * The floors against swarm's row: the least CPU a verified download costs here (receive as the
 * transport row, page-cache write, BLAKE3; a Node seeder's read and send), and the wall time that
 * CPU takes on this machine's cores even if every step ran in parallel.
 */
function floorsText(h: HeadToHead): string {
  const f = h.floors!;
  const receive = h.results.find((r) => r.tool === TRANSPORT);
  const recv = receive?.seconds.length ? summarize(receive).cpuPerGiB : null;
  const sw = h.results.find((r) => r.tool === 'swarm');
  const s = sw?.seconds.length ? summarize(sw) : null;
  const cores = availableParallelism();
  const lines = [
    `floors here, CPU s/GiB, each measured alone: a bare Node seeder (1 MiB reads, one socket write each) ${fmt(f.seeder, 2)}` +
      `${s?.seederCpuPerGiB != null ? ` (swarm's seeders: ${fmt(s.seederCpuPerGiB, 2)})` : ''}; writing into the page cache ${fmt(f.write, 2)}; BLAKE3 ${fmt(f.hash, 2)}` +
      `${recv != null ? `; receiving (the transport row's client) ${fmt(recv, 2)}` : ''}`,
  ];
  if (recv != null) {
    const client = recv + f.write + f.hash;
    lines.push(
      `a verified download here costs at least ${fmt(client, 2)} client + ${fmt(f.seeder, 2)} seeder CPU s/GiB: on ${cores} core(s) at least ${fmt((client + f.seeder) / cores, 2)} s/GiB of wall time with every step in parallel` +
        `${s ? ` (swarm: ${fmt(s.sPerGiB, 2)} s/GiB, client ${fmt(s.cpuPerGiB, 2)} CPU s/GiB)` : ''}`,
    );
  }
  return lines.join('\n');
}

/** CPU seconds (user + sys, every thread) the processes have used so far; a gone process counts 0. */
export function cpuOf(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // fields after the command name, which may hold spaces: utime and stime are the 12th and 13th
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()!.split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited
    }
  }
  return ticks / CLOCK_TICKS;
}

/** Linux's USER_HZ: /proc's CPU times are in these. */
const CLOCK_TICKS = 100;

/** The process and its children (nginx: master and workers). */
export function withChildren(pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return [pid, ...(kids ? kids.split(/\s+/).map(Number) : [])];
  } catch {
    return [pid];
  }
}
