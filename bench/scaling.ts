/**
 * Scaling under rate-limited peers (root only). The bench builds its own network in namespaces:
 * a client namespace and N peer namespaces, each peer joined to the client by a veth pair whose
 * peer side is shaped with `tc qdisc ... tbf rate 200mbit`. Addresses are link-local
 * (169.254.100+k.1 and .2), exist only inside these namespaces, and vanish with them; everything
 * is deleted at the end (and on Ctrl-C). Each peer namespace runs `swarm serve` and an nginx;
 * from the client namespace, `swarm get` and aria2c fetch the same fresh file from 1, 2, 4 and
 * 8 peers. Reported: MB/s, the fraction of the summed line rates, and × one line.
 *
 *   node dist/bench/scaling.js [--mib 256] [--peers 1,2,4,8] [--rounds 2] [--tools swarm,aria2c]
 *                              [--get-args "--max-memory 96"]
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { median } from './lib/stats.js';
import { ensureDir, filesEqual, makeRandomFile, startServe, stopAll, timed, SWARM_BIN } from './lib/procs.js';
import { startNginx, which, type Nginx } from './lib/nginx.js';
import { ARIA2_ARGS } from './compare.js';

export const LINE_RATE_BITS = 200e6;
const LINE_BYTES_PER_SEC = LINE_RATE_BITS / 8;

export interface ScalingRow {
  peers: number;
  lineMBps: number;
  swarm: number[];
  aria2c: number[];
}

function sh(argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
}

export function scalingSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and tc)';
  for (const t of ['ip', 'tc']) if (!which(t)) return `${t} not found (apt-get install -y iproute2)`;
  return null;
}

export async function scaling(opts: { root: string; mib: number; peers: number[]; rounds: number; getArgs?: string[]; tools?: ('swarm' | 'aria2c')[] }): Promise<ScalingRow[]> {
  const tag = `swb${process.pid % 10000}`;
  const client = `${tag}c`;
  const maxPeers = Math.max(...opts.peers);
  const peerNs = Array.from({ length: maxPeers }, (_, i) => `${tag}p${i + 1}`);
  const addr = (k: number, side: 1 | 2) => `169.254.${100 + k}.${side}`;
  const cleanup = () => {
    stopAll();
    for (const ns of [client, ...peerNs]) spawnSync('ip', ['netns', 'del', ns]);
  };
  process.once('exit', cleanup);
  const nginxes: Nginx[] = [];
  try {
    sh(['ip', 'netns', 'add', client]);
    sh(['ip', '-n', client, 'link', 'set', 'lo', 'up']);
    peerNs.forEach((ns, i) => {
      const k = i + 1;
      sh(['ip', 'netns', 'add', ns]);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      sh(['ip', 'link', 'add', `${tag}v${k}`, 'netns', ns, 'type', 'veth', 'peer', 'name', `${tag}w${k}`, 'netns', client]);
      sh(['ip', '-n', ns, 'addr', 'add', `${addr(k, 1)}/30`, 'dev', `${tag}v${k}`]);
      sh(['ip', '-n', client, 'addr', 'add', `${addr(k, 2)}/30`, 'dev', `${tag}w${k}`]);
      sh(['ip', '-n', ns, 'link', 'set', `${tag}v${k}`, 'up']);
      sh(['ip', '-n', client, 'link', 'set', `${tag}w${k}`, 'up']);
      sh(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', `${tag}v${k}`, 'root', 'tbf', 'rate', '200mbit', 'burst', '256kb', 'latency', '50ms']);
    });
    const src = ensureDir(path.join(opts.root, 'scaling-src'));
    const out = ensureDir(path.join(opts.root, 'scaling-out'));
    const file = path.join(src, 'big.bin');
    rmSync(path.join(src, '.swarm'), { recursive: true, force: true });
    process.stderr.write(`scaling: writing ${opts.mib} MiB of fresh random data...\n`);
    makeRandomFile(file, opts.mib * 2 ** 20);
    // aria2c needs nginx mirrors; without either, run swarm alone and say so
    const haveAria = !!which('aria2c') && !!(which('nginx') ?? which('/usr/sbin/nginx'));
    if (!haveAria) process.stderr.write('scaling: aria2c or nginx missing (apt-get install -y aria2 nginx-light): measuring swarm only\n');
    const tools = (opts.tools ?? ['swarm', 'aria2c']).filter((tl) => tl === 'swarm' || haveAria);
    // the first peer hashes; the others then find the manifest cache
    const swarmPorts: string[] = [];
    for (const [i, ns] of peerNs.entries()) {
      await startServe(src, ['--host', addr(i + 1, 1), '--port', '7070', '--threads', '1'], ['ip', 'netns', 'exec', ns]);
      swarmPorts.push(`${addr(i + 1, 1)}:7070`);
      if (tools.includes('aria2c')) nginxes.push(await startNginx(src, 1, ensureDir(path.join(opts.root, `nginx-${i + 1}`)), addr(i + 1, 1), [8080], ['ip', 'netns', 'exec', ns]));
    }
    const inClient = ['ip', 'netns', 'exec', client];
    const dest = path.join(out, 'big.bin');
    const rows: ScalingRow[] = opts.peers.map((n) => ({ peers: n, lineMBps: (n * LINE_BYTES_PER_SEC) / 1e6, swarm: [], aria2c: [] }));
    for (let r = 0; r < opts.rounds; r++) {
      for (const row of rows) {
        const n = row.peers;
        for (const tool of tools) {
          rmSync(dest, { force: true });
          rmSync(dest + '.aria2', { force: true });
          spawnSync('sync');
          const argv =
            tool === 'swarm'
              ? [...inClient, process.execPath, SWARM_BIN, 'get', 'big.bin', ...swarmPorts.slice(0, n).flatMap((p) => ['--peer', p]), '-o', out, '-q', ...(opts.getArgs ?? [])]
              : [...inClient, 'aria2c', ...ARIA2_ARGS, '-d', out, '-o', 'big.bin', ...nginxes.slice(0, n).map((g) => g.urls('big.bin')[0]!)];
          const t = timed(argv);
          if (t.code !== 0) throw new Error(`${tool} with ${n} peers failed (${t.code})`);
          if (!filesEqual(file, dest)) throw new Error(`${tool} with ${n} peers: bytes differ`);
          const mbps = (opts.mib * 2 ** 20) / t.seconds / 1e6;
          row[tool].push(mbps);
          process.stderr.write(`  round ${r + 1}: ${n} peer(s) ${tool} ${mbps.toFixed(1)} MB/s (${((mbps / row.lineMBps) * 100).toFixed(1)}% of line)\n`);
        }
      }
    }
    rmSync(dest, { force: true });
    rmSync(src, { recursive: true, force: true });
    return rows;
  } finally {
    for (const g of nginxes) g.stop();
    cleanup();
    process.off('exit', cleanup);
  }
}

export function scalingSummary(row: ScalingRow): { swarmMBps: number; swarmPct: number; swarmX: number; ariaMBps: number; ariaPct: number; ariaX: number } {
  const s = median(row.swarm);
  const a = row.aria2c.length ? median(row.aria2c) : NaN;
  const one = LINE_BYTES_PER_SEC / 1e6;
  return { swarmMBps: s, swarmPct: (s / row.lineMBps) * 100, swarmX: s / one, ariaMBps: a, ariaPct: (a / row.lineMBps) * 100, ariaX: a / one };
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const skip = scalingSkipReason();
  if (skip) {
    console.log(`scaling bench skipped: ${skip}`);
  } else {
    const args = process.argv.slice(2);
    const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1]! : d);
    const rows = await scaling({
      root: ensureDir(opt('dir', '/tmp/swarm-bench')),
      mib: Number(opt('mib', '256')),
      peers: opt('peers', '1,2,4,8').split(',').map(Number),
      rounds: Number(opt('rounds', '2')),
      getArgs: opt('get-args', '').split(' ').filter(Boolean),
      tools: opt('tools', 'swarm,aria2c').split(',') as ('swarm' | 'aria2c')[],
    });
    for (const r of rows) console.log(r.peers, scalingSummary(r));
  }
}
