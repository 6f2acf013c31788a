/**
 * Scaling under rate-limited peers (root only). The bench builds its own network in namespaces
 * (bench/lib/netns.ts): a client and N peers on one bridge, each peer's upload shaped with
 * `tc qdisc ... tbf rate 200mbit burst 256kb latency 50ms` (the client's is not: it only sends
 * requests). Addresses are link-local (169.254.100.x), exist only inside these namespaces and
 * vanish with them; everything is deleted at the end, on failure and on Ctrl-C. Each peer runs
 * `swarm serve` and an nginx; from the client, `swarm get` and aria2c fetch the same fresh file
 * from 1, 2, 4 and 8 peers, alternating. Reported: MB/s, the fraction of the summed line rates,
 * and × one line; every copy's SHA-256 is compared with the source's ("bytes ok"; a failure makes
 * the exit code 1). Processes are stopped by PID, their exits awaited, before anything is deleted.
 *
 *   node dist/bench/scaling.js [--mib 256] [--peers 1,2,4,8] [--rounds 2] [--tools swarm,aria2c]
 *                              [--get-args "--max-memory 96"] [--dir /tmp/swarm-bench]
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fmt, mbps, median, MiB, sizeText, table, UNITS } from './lib/stats.js';
import { Checks, ensureDir, makeRandomFile, removeAfterStop, SourceHash } from './lib/files.js';
import { runMain, startServe, timed, SWARM_BIN, type Run } from './lib/procs.js';
import { startNginx, type Nginx } from './lib/nginx.js';
import { createLab, deleteStaleLabs, netnsSkipReason, type Lab } from './lib/netns.js';
import { installMissing, missingText } from './lib/tools.js';
import { args, isMain, nums, num, oneOf, parseOptions, str } from './lib/options.js';
import { Aborted, checkAborted } from './lib/wait.js';
import { ARIA2_ARGS } from './compare.js';

export const LINE_RATE_MBIT = 200;
/** one line's rate in MB/s (10^6 bytes/s) */
const LINE_MBPS = (LINE_RATE_MBIT * 1e6) / 8 / 1e6;
const NS_PREFIX = 'swsc';
const SUBNET = '169.254.100';
const SERVE_PORT = 7070;
const NGINX_PORT = 8080;
export const SCALING_TOOLS = ['swarm', 'aria2c'] as const;
type Tool = (typeof SCALING_TOOLS)[number];

export interface ScalingRow {
  peers: number;
  /** MB/s of each counted run, per tool */
  mbps: Record<Tool, number[]>;
  checks: Record<Tool, Checks>;
}

export interface Scaling {
  rows: ScalingRow[];
  tools: Tool[];
  notes: string[];
  error: string | null;
  failures: number;
}

export function scalingSkipReason(): string | null {
  return netnsSkipReason();
}

export interface ScalingOptions {
  root: string;
  mib: number;
  peers: number[];
  rounds: number;
  getArgs?: string[] | null;
  tools?: readonly Tool[];
}

export async function scaling(run: Pick<Run, 'procs' | 'signal' | 'atExit'>, o: ScalingOptions): Promise<Scaling> {
  const { procs, signal } = run;
  const bytes = Math.round(o.mib * MiB);
  const res: Scaling = { rows: [], tools: [], notes: [], error: null, failures: 0 };
  const missing = (o.tools ?? SCALING_TOOLS).includes('aria2c') ? installMissing(['aria2c', 'nginx']) : [];
  res.tools = (o.tools ?? SCALING_TOOLS).filter((t) => t === 'swarm' || !missing.length);
  if (res.tools.length < (o.tools ?? SCALING_TOOLS).length) res.notes.push(`${missingText(missing)}: aria2c left out`);
  res.rows = o.peers.map((n) => ({ peers: n, mbps: { swarm: [], aria2c: [] }, checks: { swarm: new Checks(), aria2c: new Checks() } }));
  const stale = await deleteStaleLabs(NS_PREFIX);
  if (stale.length) res.notes.push(`deleted namespaces left by a killed run: ${stale.join(', ')}`);
  const src = ensureDir(path.join(o.root, 'scaling-src'));
  const out = ensureDir(path.join(o.root, 'scaling-out'));
  const dest = path.join(out, 'big.bin');
  const nginxDirs: string[] = [];
  let lab: Lab | null = null;
  let forget = () => {};
  try {
    const maxPeers = Math.max(...o.peers);
    // peer 0 is the client; peers 1..N seed
    lab = createLab({ prefix: NS_PREFIX, peers: maxPeers + 1, subnet: SUBNET, tbf: { rateMbit: LINE_RATE_MBIT, burst: '256kb', latency: '50ms' }, unshaped: [0] });
    const labNow = lab;
    forget = run.atExit(() => labNow.destroy());
    const [client, ...seeders] = lab.peers;
    const file = path.join(src, 'big.bin');
    rmSync(path.join(src, '.swarm'), { recursive: true, force: true });
    process.stderr.write(`scaling: writing ${sizeText(bytes)} of fresh random data...\n`);
    makeRandomFile(file, bytes);
    const source = await SourceHash.of(file);
    // the first seeder hashes; the others then find its manifest cache
    const nginxes: Nginx[] = [];
    for (const p of seeders) {
      await startServe(procs, src, ['--host', p.addr, '--port', String(SERVE_PORT), '--threads', '1'], lab.exec(p.ns));
      if (res.tools.includes('aria2c')) {
        nginxDirs.push(ensureDir(path.join(o.root, `scaling-nginx-${p.index}`)));
        nginxes.push(await startNginx(procs, { root: src, prefix: nginxDirs.at(-1)!, host: p.addr, ports: [NGINX_PORT], cmdPrefix: lab.exec(p.ns) }));
      }
    }
    const inClient = lab.exec(client!.ns);
    for (let r = 0; r < o.rounds; r++) {
      for (const row of res.rows) {
        const n = row.peers;
        for (const tool of res.tools) {
          checkAborted(signal);
          rmSync(dest, { force: true });
          rmSync(dest + '.aria2', { force: true });
          spawnSync('sync');
          const argv =
            tool === 'swarm'
              ? [...inClient, process.execPath, SWARM_BIN, 'get', 'big.bin', ...seeders.slice(0, n).flatMap((p) => ['--peer', `${p.addr}:${SERVE_PORT}`]), '-o', out, '-q', ...(o.getArgs ?? [])]
              : [...inClient, 'aria2c', ...ARIA2_ARGS, '-d', out, '-o', 'big.bin', ...nginxes.slice(0, n).map((g) => g.urls('big.bin')[0]!)];
          const t = await timed(procs, argv, signal);
          const ok = row.checks[tool].add(t.code === 0 && (await source.matches(dest)));
          const rate = mbps(bytes, t.seconds);
          if (ok) row.mbps[tool].push(rate);
          process.stderr.write(`  round ${r + 1}: ${n} peer(s) ${tool} ${fmt(rate)} MB/s (${fmt((rate / (n * LINE_MBPS)) * 100)}% of line)${ok ? '' : t.code === 0 ? ', BYTES DIFFER' : `, FAILED (exit ${t.code})`}\n`);
        }
      }
    }
  } catch (e) {
    res.error = e instanceof Aborted ? 'interrupted' : (e as Error).message;
  } finally {
    // seeders and mirrors stopped (exits awaited) before their folders and namespaces go
    await removeAfterStop(procs, [src, out, ...nginxDirs]);
    lab?.destroy();
    forget();
  }
  res.failures = res.rows.reduce((a, r) => a + r.checks.swarm.failed + r.checks.aria2c.failed, 0) + (res.error && !signal.aborted ? 1 : 0);
  return res;
}

export function scalingText(s: Scaling, o: { mib: number; rounds: number }): string {
  const per = (r: ScalingRow, t: Tool) => {
    if (!s.tools.includes(t)) return ['—', '—', '—', '—'];
    const m = median(r.mbps[t]);
    return [fmt(m), fmt((m / (r.peers * LINE_MBPS)) * 100), fmt(m / LINE_MBPS, 2), r.checks[t].toString()];
  };
  return [
    `Scaling: ${sizeText(o.mib * MiB)} from N peers, each peer's upload capped at ${LINE_RATE_MBIT} Mbit/s = ${fmt(LINE_MBPS)} MB/s (tc tbf), network namespaces; medians of ${o.rounds}; ${UNITS}`,
    table(
      ['peers', 'line sum MB/s', 'swarm MB/s', 'swarm % of line', 'swarm × one line', 'swarm bytes ok', 'aria2c MB/s', 'aria2c % of line', 'aria2c × one line', 'aria2c bytes ok'],
      s.rows.map((r) => [r.peers, fmt(r.peers * LINE_MBPS, 0), ...per(r, 'swarm'), ...per(r, 'aria2c')]),
    ),
    ...s.notes.map((n) => `note: ${n}`),
    ...(s.rows.some((r) => r.checks.swarm.failed + r.checks.aria2c.failed) ? ['FAILED: some runs did not deliver the source\'s bytes (see "bytes ok")'] : []),
    ...(s.error ? [s.error === 'interrupted' ? 'interrupted: the table holds the rounds that finished' : `FAILED: ${s.error}`] : []),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const o = parseOptions('node dist/bench/scaling.js [options]: swarm and aria2c from N rate-limited peers in network namespaces (root)', {
    mib: num(256, 'file size in MiB'),
    peers: nums([1, 2, 4, 8], 'numbers of peers'),
    rounds: num(2, 'rounds (each runs every row and tool)'),
    tools: oneOf(SCALING_TOOLS, [...SCALING_TOOLS], 'tools to run'),
    'get-args': args('extra arguments for swarm get, e.g. "--max-memory 96"'),
    dir: str('/tmp/swarm-bench', 'work folder (random data is written here)'),
  });
  runMain('scaling', async (run) => {
    const skip = scalingSkipReason();
    if (skip) {
      console.log(`scaling bench skipped: ${skip}`);
      return 0;
    }
    const s = await scaling(run, { root: ensureDir(o.dir), mib: o.mib, peers: o.peers, rounds: o.rounds, getArgs: o['get-args'], tools: o.tools });
    console.log(scalingText(s, o));
    return s.failures ? 1 : 0;
  });
}
