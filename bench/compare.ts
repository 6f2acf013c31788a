/**
 * Head-to-head on loopback, 4 sources: `swarm get` from 4 `swarm serve` processes; aria2c from
 * 4 nginx server blocks serving the same file (best settings found: -s16 -x4 -k1M); curl from one
 * of them; `cp` of the file (the local copy limit); and swarm's transport alone (receive only).
 * Tools run alternately (A B C D, A B C D, ...) so drift hits all alike, after one uncounted
 * warm-up round; every result's bytes are compared with the source; `sync` runs before each so no run pays for the last one's writeback.
 * swarm fsyncs the file before renaming it; aria2c, curl and cp do not (their writeback happens
 * after they exit), which favours them.
 *
 * Exported for bench/run.ts; also runs alone: node dist/bench/compare.js [--gib 1] [--rounds 5]
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { median, spreadPct } from './lib/stats.js';
import { ensureDir, filesEqual, makeRandomFile, startServe, stopAll, timed, SWARM_BIN } from './lib/procs.js';
import { startNginx, which } from './lib/nginx.js';

export interface ToolResult {
  tool: string;
  gib: number;
  seconds: number[];
  rssMB: (number | null)[];
  cpu: (number | null)[];
  bytesOk: number;
}

export const ARIA2_ARGS = ['-s16', '-x4', '-k1M', '--file-allocation=none', '-q', '--allow-overwrite=true', '--auto-file-renaming=false'];

export function missingTools(): string[] {
  return ['aria2c', 'curl', 'nginx'].filter((t) => !which(t) && !(t === 'nginx' && which('/usr/sbin/nginx')));
}

export async function headToHead(opts: { root: string; gib: number; rounds: number; tools?: string[] }): Promise<ToolResult[]> {
  const src = ensureDir(path.join(opts.root, `h2h-src-${opts.gib}g`));
  const out = ensureDir(path.join(opts.root, 'h2h-out'));
  const file = path.join(src, 'big.bin');
  const bytes = opts.gib * 2 ** 30;
  process.stderr.write(`head-to-head: writing ${opts.gib} GiB of fresh random data...\n`);
  rmSync(path.join(src, '.swarm'), { recursive: true, force: true });
  makeRandomFile(file, bytes);
  const missing = missingTools();
  if (missing.length) process.stderr.write(`missing: ${missing.join(', ')} — install with: apt-get install -y aria2 curl nginx-light (running what can run)\n`);
  const first = await startServe(src, ['--port', '0', '--threads', '2']);
  const rest = await Promise.all([0, 1, 2].map(() => startServe(src, ['--port', '0', '--threads', '1'])));
  const peers = [first, ...rest].map((s) => `127.0.0.1:${s.port}`);
  const nginx = missing.includes('nginx') ? null : await startNginx(src, 4, ensureDir(path.join(opts.root, 'nginx')));
  const urls = nginx?.urls('big.bin') ?? [];
  const dest = path.join(out, 'big.bin');
  const all: Record<string, () => string[] | null> = {
    swarm: () => [process.execPath, SWARM_BIN, 'get', 'big.bin', ...peers.flatMap((p) => ['--peer', p]), '-o', out, '-q'],
    aria2c: () => (nginx && !missing.includes('aria2c') ? ['aria2c', ...ARIA2_ARGS, '-d', out, '-o', 'big.bin', ...urls] : null),
    curl: () => (nginx && !missing.includes('curl') ? ['curl', '-s', '-o', dest, urls[0]!] : null),
    cp: () => ['cp', file, dest],
    'swarm transport only': () => [process.execPath, path.join(path.dirname(SWARM_BIN), '../bench/lib/raw-receive.js'), 'big.bin', ...peers],
  };
  const tools = (opts.tools ?? Object.keys(all)).filter((t) => all[t]!() !== null);
  const results = new Map<string, ToolResult>(tools.map((t) => [t, { tool: t, gib: opts.gib, seconds: [], rssMB: [], cpu: [], bytesOk: 0 }]));
  try {
    // round 0 is a warm-up for every tool (JIT of the swarm processes, nginx's and the page
    // cache's first touch) and is not counted
    for (let r = 0; r <= opts.rounds; r++) {
      for (const tool of tools) {
        rmSync(dest, { force: true });
        rmSync(dest + '.aria2', { force: true });
        spawnSync('sync');
        const t = timed(all[tool]!()!);
        const res = results.get(tool)!;
        if (t.code !== 0) throw new Error(`${tool} failed with exit code ${t.code}`);
        const transportOnly = tool === 'swarm transport only';
        if (!transportOnly && !filesEqual(file, dest)) throw new Error(`${tool}: downloaded bytes differ from the source`);
        process.stderr.write(`  ${r === 0 ? 'warm-up' : `round ${r}`}: ${tool} ${t.seconds.toFixed(2)} s${t.maxRssMB ? `, ${t.maxRssMB.toFixed(0)} MB` : ''}\n`);
        if (r === 0) continue;
        res.bytesOk += transportOnly ? 0 : 1;
        res.seconds.push(t.seconds);
        res.rssMB.push(t.maxRssMB);
        res.cpu.push(t.cpuSeconds);
      }
    }
  } finally {
    nginx?.stop();
    stopAll();
    rmSync(dest, { force: true });
    rmSync(src, { recursive: true, force: true });
  }
  return [...results.values()];
}

export function summarize(r: ToolResult): { medianS: number; spread: number; mbps: number; sPerGiB: number; rss: number | null; cpuPerGiB: number | null } {
  const m = median(r.seconds);
  const rss = r.rssMB.filter((x): x is number => x !== null);
  const cpu = r.cpu.filter((x): x is number => x !== null);
  return {
    medianS: m,
    spread: spreadPct(r.seconds),
    mbps: (r.gib * 1024) / m,
    sPerGiB: m / r.gib,
    rss: rss.length ? Math.max(...rss) : null,
    cpuPerGiB: cpu.length ? median(cpu) / r.gib : null,
  };
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const args = process.argv.slice(2);
  const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1]! : d);
  const res = await headToHead({ root: ensureDir(opt('dir', '/tmp/swarm-bench')), gib: Number(opt('gib', '1')), rounds: Number(opt('rounds', '5')) });
  for (const r of res) console.log(r.tool, summarize(r));
}
