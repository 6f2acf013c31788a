/**
 * `npm run bench`: the suite that backs swarm's speed claims, in one command.
 *   1. head-to-head, 1 GiB, loopback, 4 sources: swarm, aria2c, curl, cp, swarm's transport alone
 *   2. memory and CPU per GiB for 1 GiB and 4 GiB files (swarm, aria2c)
 *   3. scaling under 200 Mbit/s peers in network namespaces (root only; skipped with a reason)
 * Prints the tables, and writes bench/results/bench-<time>.json and bench/results/bench-<time>.svg.
 *
 *   npm run bench -- [--rounds 5] [--scaling-mib 512] [--no-scaling] [--dir /tmp/swarm-bench]
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, table } from './lib/stats.js';
import { ensureDir } from './lib/procs.js';
import { barChart } from './lib/chart.js';
import { headToHead, missingTools, summarize, type ToolResult } from './compare.js';
import { scaling, scalingSkipReason, scalingSummary, type ScalingRow } from './scaling.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1]! : d);
const ROOT = ensureDir(opt('dir', '/tmp/swarm-bench'));
const ROUNDS = Number(opt('rounds', '5'));
const RESULTS = ensureDir(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results'));

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.availableParallelism()} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, node ${process.version}`;
}

const started = new Date();
console.log(`swarm bench suite — ${machine()}`);
const missing = missingTools();
if (missing.length) console.log(`note: ${missing.join(', ')} missing (apt-get install -y aria2 curl nginx-light); those rows are left out`);

// 1. head-to-head
const h2h = await headToHead({ root: ROOT, gib: 1, rounds: ROUNDS });
const by = (tool: string, rs: ToolResult[]) => rs.find((r) => r.tool === tool);
const h2hRows = h2h.map((r) => {
  const s = summarize(r);
  return [r.tool, fmt(s.sPerGiB, 2), `±${fmt(s.spread)}%`, fmt(s.mbps, 0), s.rss === null ? 'n/a' : fmt(s.rss, 0), s.cpuPerGiB === null ? 'n/a' : fmt(s.cpuPerGiB, 2), r.tool.includes('transport') ? 'n/a' : `${r.bytesOk}/${r.seconds.length}`];
});
console.log(`\n1. head-to-head: 1 GiB over loopback from 4 sources, ${ROUNDS} alternating rounds, medians`);
console.log(table(['tool', 's/GiB', 'spread', 'MB/s', 'peak RSS MB', 'CPU s/GiB', 'bytes ok'], h2hRows));
const sw = by('swarm', h2h);
const ratios: Record<string, number> = {};
for (const other of ['aria2c', 'curl', 'cp', 'swarm transport only']) {
  const o = by(other, h2h);
  if (sw && o) ratios[`swarm/${other}`] = summarize(sw).medianS / summarize(o).medianS;
}
console.log(Object.entries(ratios).map(([k, v]) => `time ${k}: ${fmt(v, 2)}×`).join('   '));

// 2. memory and CPU at 4 GiB
const big = await headToHead({ root: ROOT, gib: 4, rounds: Math.max(1, Math.min(2, ROUNDS)), tools: ['swarm', 'aria2c'] });
const memRows = [...h2h.filter((r) => r.tool === 'swarm' || r.tool === 'aria2c'), ...big].map((r) => {
  const s = summarize(r);
  return [r.tool, `${r.gib} GiB`, fmt(s.sPerGiB, 2), s.rss === null ? 'n/a' : fmt(s.rss, 0), s.cpuPerGiB === null ? 'n/a' : fmt(s.cpuPerGiB, 2)];
});
console.log('\n2. memory and CPU (peak RSS of the downloading process; user+sys CPU per GiB)');
console.log(table(['tool', 'file', 's/GiB', 'peak RSS MB', 'CPU s/GiB'], memRows));

// 3. scaling
let scal: ScalingRow[] = [];
const skip = args.includes('--no-scaling') ? 'turned off with --no-scaling' : scalingSkipReason();
if (skip) console.log(`\n3. scaling: skipped (${skip})`);
else {
  const mib = Number(opt('scaling-mib', '512'));
  scal = await scaling({ root: ROOT, mib, peers: [1, 2, 4, 8], rounds: 2 });
  console.log(`\n3. scaling: ${mib} MiB from N peers, each behind its own 200 Mbit/s link (tbf), network namespaces; medians of 2`);
  console.log(
    table(
      ['peers', 'line sum MB/s', 'swarm MB/s', 'swarm % of line', 'swarm × one line', 'aria2c MB/s', 'aria2c % of line', 'aria2c × one line'],
      scal.map((r) => {
        const s = scalingSummary(r);
        return [r.peers, fmt(r.lineMBps, 0), fmt(s.swarmMBps), fmt(s.swarmPct), fmt(s.swarmX, 2), fmt(s.ariaMBps), fmt(s.ariaPct), fmt(s.ariaX, 2)];
      }),
    ),
  );
}

const stamp = started.toISOString().replace(/[:.]/g, '-');
writeFileSync(path.join(RESULTS, `bench-${stamp}.json`), JSON.stringify({ machine: machine(), started, headToHead: h2h, memory: big, ratios, scaling: scal }, null, 2));
const bars = h2h.map((r) => ({ label: r.tool, value: summarize(r).sPerGiB }));
writeFileSync(path.join(RESULTS, `bench-${stamp}.svg`), barChart('1 GiB from 4 loopback sources: seconds (lower is better)', 's', bars));
console.log(`\nresults: bench/results/bench-${stamp}.json and .svg`);
