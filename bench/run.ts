/**
 * `npm run bench`: the suite that backs swarm's speed claims, in one command.
 *   1. head-to-head, 1 GiB, loopback, 4 sources: swarm, aria2c, curl, cp, swarm's transport alone
 *   2. memory and CPU per GiB for 1 GiB and 4 GiB files (swarm, aria2c)
 *   3. scaling under 200 Mbit/s peers in network namespaces (root only; skipped with the reason)
 *   4. flash crowd: 1 seeder, N downloaders at once, 100 Mbit/s uploads, aria2c against swarm
 *      (root only; skipped with the reason)
 *   5. chunk hash cost (BLAKE3, SHA-256, xxhash64), one thread
 * Each section prints its table as soon as it is done, so a later failure loses nothing; any
 * failed check (bytes, known answers) or failed section makes the exit code 1. Writes
 * bench/results/bench-<time>.json and .svg (git-ignored).
 *
 *   npm run bench -- [--rounds 5] [--dir /tmp/swarm-bench] [--no-scaling] [--no-flash-crowd] ...
 *   (npm run bench -- --help lists every option)
 */
import { writeFileSync } from 'node:fs';
import { fmt, MiB, sizeText, table, UNITS } from './lib/stats.js';
import { ensureDir } from './lib/files.js';
import { barChart } from './lib/chart.js';
import { flag, isMain, num, nums, oneOf, parseOptions, str } from './lib/options.js';
import { runMain } from './lib/procs.js';
import { DEFAULT_RESULTS_DIR, machine, shownPath, writeResults } from './lib/report.js';
import { H2H_TOOLS, headToHead, headToHeadText, summarize, toolLabel, type ToolResult } from './compare.js';
import { scaling, scalingSkipReason, scalingText } from './scaling.js';
import { DEFAULT_SWARM_BIN, flashCrowdOptions, flashCrowdSection, flashCrowdSkipReason, flashCrowdTools } from './flash-crowd.js';
import { hashCost } from './hash.js';

const OPTIONS = () => parseOptions('npm run bench -- [options]: the whole suite (head-to-head, memory, scaling, flash crowd, hash cost)', {
  rounds: num(5, 'counted rounds of the head-to-head and hash runs (memory and scaling: at most 2; flash crowd: 1)'),
  mib: num(1024, 'head-to-head file size in MiB'),
  tools: oneOf(H2H_TOOLS, [...H2H_TOOLS], 'head-to-head tools'),
  'big-mib': num(4096, 'the larger file of the memory section, MiB'),
  'scaling-mib': num(512, 'scaling file size in MiB'),
  'scaling-peers': nums([1, 2, 4, 8], 'scaling: numbers of peers'),
  'flash-mib': num(64, 'flash crowd file size in MiB'),
  'flash-peers': nums([4, 8, 16], 'flash crowd: numbers of downloaders'),
  'hash-mib': num(1024, 'MiB hashed per run and hash'),
  'no-memory': flag('leave out section 2'),
  'no-scaling': flag('leave out section 3'),
  'no-flash-crowd': flag('leave out section 4'),
  dir: str('/tmp/swarm-bench', 'work folder (random data is written here)'),
  results: str(DEFAULT_RESULTS_DIR, 'folder for the JSON and SVG of the run'),
});

if (isMain(import.meta.url)) {
  const o = OPTIONS();
  runMain('bench', async (run) => {
    const { procs, signal } = run;
    const root = ensureDir(o.dir);
    const started = new Date();
    const record: Record<string, unknown> = { options: o };
    let failures = 0;
    const say = (s: string) => console.log(`\n${s}`);
    /** Run one section; a throw is a failed section, reported, and the suite goes on. */
    const section = async (name: string, body: () => Promise<number>) => {
      if (signal.aborted) return;
      try {
        failures += await body();
      } catch (e) {
        failures++;
        say(`${name}: FAILED: ${(e as Error).message}`);
      }
    };
    console.log(`swarm bench suite — ${machine()}`);
    console.log(`units: ${UNITS}`);

    let h2h: ToolResult[] = [];
    await section('1. head-to-head', async () => {
      const h = await headToHead(procs, signal, { root, mib: o.mib, rounds: o.rounds, tools: o.tools });
      h2h = h.results;
      record.headToHead = h;
      say(`1. ${headToHeadText(h, o)}`);
      return h.failures;
    });

    await section('2. memory', async () => {
      if (o['no-memory']) return say('2. memory and CPU: skipped (--no-memory)'), 0;
      const tools = o.tools.filter((t) => t === 'swarm' || t === 'aria2c');
      if (!tools.length) return say('2. memory and CPU: skipped (neither swarm nor aria2c in --tools)'), 0;
      const rounds = Math.max(1, Math.min(2, o.rounds));
      const big = await headToHead(procs, signal, { root, mib: o['big-mib'], rounds, tools });
      record.memory = big;
      const rows = [...h2h.filter((r) => r.tool === 'swarm' || r.tool === 'aria2c'), ...big.results].map((r) => {
        const s = summarize(r);
        return [toolLabel(r.tool), sizeText(r.bytes), fmt(s.sPerGiB, 2), fmt(s.rss, 0), fmt(s.cpuPerGiB, 2), r.checks.toString()];
      });
      say(`2. Memory and CPU: peak RSS of the downloading process, user+sys CPU per GiB; ${sizeText(o['big-mib'] * MiB)} in ${rounds} round(s); ${UNITS}`);
      console.log(table(['tool', 'file', 's/GiB', 'peak RSS MiB', 'CPU s/GiB', 'bytes ok'], rows));
      for (const n of big.notes) console.log(`note: ${n}`);
      if (big.error) console.log(`FAILED: ${big.error}`);
      return big.failures;
    });

    await section('3. scaling', async () => {
      const skip = o['no-scaling'] ? 'turned off with --no-scaling' : scalingSkipReason();
      if (skip) return say(`3. scaling: skipped (${skip})`), 0;
      const opts = { root, mib: o['scaling-mib'], peers: o['scaling-peers'], rounds: Math.max(1, Math.min(2, o.rounds)) };
      const s = await scaling(run, opts);
      record.scaling = s;
      say(`3. ${scalingText(s, opts)}`);
      return s.failures;
    });

    await section('4. flash crowd', async () => {
      const skip = o['no-flash-crowd'] ? 'turned off with --no-flash-crowd' : flashCrowdSkipReason();
      if (skip) return say(`4. flash crowd: skipped (${skip})`), 0;
      const { tools, notes } = flashCrowdTools(['aria2c', 'swarm'], DEFAULT_SWARM_BIN);
      if (!tools.length) return say(`4. flash crowd: skipped (${notes.join('; ')})`), 0;
      const f = await flashCrowdSection(run, flashCrowdOptions({ root, mib: o['flash-mib'], peers: o['flash-peers'], tools }), notes);
      record.flashCrowd = f.record;
      say(`4. ${f.text}`);
      return f.failures;
    });

    await section('5. hash cost', async () => {
      const h = await hashCost({ mib: o['hash-mib'], runs: o.rounds }, signal);
      record.hashCost = h.rows;
      say(`5. ${h.text}`);
      return h.failures;
    });

    const json = writeResults(o.results, 'bench', started, record);
    const bars = h2h.filter((r) => r.seconds.length).map((r) => ({ label: toolLabel(r.tool), value: summarize(r).sPerGiB }));
    const svg = json.replace(/\.json$/, '.svg');
    writeFileSync(svg, barChart(`${sizeText(o.mib * MiB)} from 4 loopback sources: seconds per GiB (lower is better)`, 's', bars));
    say(`results: ${shownPath(json)} and .svg`);
    if (failures) console.log(`FAILED: ${failures} check(s) or section(s) failed (see above)`);
    return failures ? 1 : 0;
  });
}
