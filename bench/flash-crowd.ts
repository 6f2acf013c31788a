/**
 * Flash crowd (root only): one seeder and N downloaders that all start at the same moment, every
 * peer's UPLOAD capped at 100 Mbit/s, one fresh file of random data. How long until every
 * downloader has the whole file? Two contenders in the same run, alternating, on the same network:
 * aria2c over BitTorrent with opentracker (flash-crowd/bittorrent.ts) and swarm's tracker, seeder
 * and downloaders (flash-crowd/swarm-side.ts); and, computed rather than measured, the bound for a
 * swarm where every peer uploads at U: max(F/U_seed, N·F/(U_seed + N·U)).
 *
 * The network (bench/lib/netns.ts): a hub namespace with a bridge (and the trackers, on
 * 169.254.200.1, not rate-limited) and one namespace per peer (seeder 169.254.200.10, downloader
 * k on 169.254.200.(10+k)), each joined to the bridge by a veth pair whose end in the peer's
 * namespace is shaped with `tc qdisc ... tbf rate 100mbit burst 64kb latency 50ms` (egress = the
 * peer's upload; downloads are not capped). Namespaces are named swfc<pid>h and swfc<pid>p<i>
 * (bench/scaling.ts uses swsc<pid>* and 169.254.100.*, so both can run at once). Everything is
 * deleted at the end, on failure and on Ctrl-C; processes are stopped by PID and their exits
 * awaited before any folder is deleted (flash-crowd/trials.ts). Every downloaded file's SHA-256 is
 * compared with the source's ("bytes ok k/N"); any failed check makes the exit code 1. aria2c does
 * not fsync what it wrote; swarm does, before its rename.
 *
 *   node dist/bench/flash-crowd.js [--peers 4,8,16] [--mib 64] [--rounds 1] [--tools aria2c,swarm]
 *        [--piece-kib 256] [--upload-mbit 100] [--burst 64kb] [--latency 50ms] [--timeout SECONDS]
 *        [--swarm-get-args "get {name} -o {outDir} --tracker {tracker} --json"]
 *        [--swarm-serve-args "..."] [--swarm-tracker-args "..."] [--swarm-bin dist/bin/swarm.js]
 *        [--dir /tmp/swarm-bench] [--results bench/results] [--keep] [--no-link-check] [--hold-pages]
 *
 * Not root, or no `ip`/`tc`: prints why and exits 0. aria2c, opentracker or mktorrent missing:
 * installs them (apt-get, unless SWARM_BENCH_NO_INSTALL is set); if that fails, says
 * `apt-get install -y aria2 opentracker mktorrent` and runs swarm alone.
 */
import { holdFreePages } from './lib/vm-pages.js';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDir } from './lib/files.js';
import { createLab, deleteStaleLabs, netnsSkipReason, type Lab } from './lib/netns.js';
import { args, flag, isMain, maybeNum, num, nums, oneOf, parseOptions, str } from './lib/options.js';
import { runMain, type Run } from './lib/procs.js';
import { DEFAULT_RESULTS_DIR, machine, shownPath, writeResults } from './lib/report.js';
import { fmt } from './lib/stats.js';
import { installMissing, missingText } from './lib/tools.js';
import { BITTORRENT_TOOLS } from './flash-crowd/bittorrent.js';
import { CONTENDERS, NS_PREFIX, SUBNET, type Contender, type FlashCrowdOptions, type Trial } from './flash-crowd/common.js';
import { summaryRows, flashCrowdText } from './flash-crowd/table.js';
import { flashCrowd, type FlashRun } from './flash-crowd/trials.js';

export { boundSeconds } from './flash-crowd/common.js';
export { torrentInfoHash } from './flash-crowd/bittorrent.js';

export const DEFAULT_SWARM_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/swarm.js');

export function flashCrowdSkipReason(): string | null {
  return netnsSkipReason();
}

/** The contenders of `wanted` that can run here, and notes on those left out. */
export function flashCrowdTools(wanted: Contender[], swarmBin: string): { tools: Contender[]; notes: string[] } {
  const notes: string[] = [];
  let tools = [...wanted];
  const missingBt = tools.includes('aria2c') ? installMissing(BITTORRENT_TOOLS) : [];
  if (tools.includes('aria2c') && missingBt.length) {
    notes.push(`${missingText(missingBt)}: aria2c left out`);
    tools = tools.filter((t) => t !== 'aria2c');
  }
  if (tools.includes('swarm') && !existsSync(swarmBin)) {
    notes.push(`${swarmBin} not found (npm run build, or --swarm-bin): swarm left out`);
    tools = tools.filter((t) => t !== 'swarm');
  }
  return { tools, notes };
}

export interface FlashSection {
  text: string;
  failures: number;
  trials: Trial[];
  record: Record<string, unknown>;
}

/**
 * Build the lab, run the trials, tear everything down, and return the table text (printed by the
 * caller whatever happened) with the number of failures (failed trials and byte checks).
 */
export async function flashCrowdSection(run: Pick<Run, 'procs' | 'signal' | 'atExit'>, opts: FlashCrowdOptions, notes: string[] = []): Promise<FlashSection> {
  const stale = await deleteStaleLabs(NS_PREFIX);
  if (stale.length) notes.push(`deleted namespaces left by an earlier run that was killed: ${stale.join(', ')}`);
  for (const pid of new Set(stale.map((ns) => ns.slice(NS_PREFIX.length).replace(/\D.*$/, '')))) {
    const dir = path.join(opts.root, `flash-crowd-${pid}`);
    if (existsSync(dir)) {
      rmSync(dir, { recursive: true, force: true });
      notes.push(`deleted ${dir}, the work folder of that run`);
    }
  }
  const trials: Trial[] = [];
  let lab: Lab | null = null;
  let forget = () => {};
  let result: FlashRun | null = null;
  let failure: Error | null = null;
  try {
    lab = createLab({ prefix: NS_PREFIX, peers: Math.max(...opts.peers) + 1, subnet: SUBNET, tbf: opts.tbf });
    const labNow = lab;
    forget = run.atExit(() => labNow.destroy());
    result = await flashCrowd(opts, run.signal, lab, run.procs, (t) => {
      trials.push(t);
      process.stderr.write(
        t.error === 'interrupted'
          ? `flash-crowd: round ${t.round}, N=${t.n}, ${t.contender}: interrupted (left out of the table)\n`
          : `flash-crowd: round ${t.round}, N=${t.n}, ${t.contender}: all done ${fmt(t.allDone, 2)} s, first ${fmt(t.first, 2)} s, last ${fmt(t.last, 2)} s, bytes ok ${t.bytesOk}/${t.n}\n`,
      );
    });
  } catch (e) {
    failure = e as Error;
  } finally {
    await run.procs.stopAll();
    lab?.destroy();
    forget();
  }
  const allNotes = [...notes, ...(result?.notes ?? [])];
  const interrupted = !!result?.interrupted || run.signal.aborted;
  // a trial that failed counts once; in the others, each downloader without the source's bytes
  const failedTrials = trials.filter((t) => t.error && t.error !== 'interrupted').length;
  const bytesFailed = interrupted ? 0 : trials.filter((t) => !t.error).reduce((a, t) => a + (t.n - t.bytesOk), 0);
  const text = [
    flashCrowdText(trials, opts),
    ...allNotes.map((n) => `note: ${n}`),
    ...(interrupted ? ['interrupted: the table holds what finished before Ctrl-C'] : []),
    ...(failure ? [`FAILED: ${failure.message}`] : []),
    ...(failedTrials ? [`FAILED: ${failedTrials} trial(s) did not run to the end: ${[...new Set(trials.map((t) => t.error?.split('\n')[0]).filter((e) => e && e !== 'interrupted'))].join('; ')}`] : []),
    ...(bytesFailed ? [`FAILED: ${bytesFailed} downloader(s) did not get the source's bytes`] : []),
  ].join('\n');
  const record = {
    config: { ...opts, bytes: opts.mib * 2 ** 20, uploadBytesPerS: (opts.tbf.rateMbit * 1e6) / 8, subnet: `${SUBNET}.0/24`, commands: result?.commands ?? {} },
    linkCheck: result?.linkCheck ?? null,
    summary: summaryRows(trials, opts.mib).json,
    trials,
    notes: allNotes,
    interrupted,
    error: failure?.message ?? null,
  };
  return { text, failures: (failure ? 1 : 0) + failedTrials + bytesFailed, trials, record };
}

/** The defaults, for bench/run.ts. */
export function flashCrowdOptions(o: Partial<FlashCrowdOptions> & { root: string }): FlashCrowdOptions {
  return {
    mib: 64,
    peers: [4, 8, 16],
    rounds: 1,
    tools: [...CONTENDERS],
    pieceKiB: 256,
    tbf: { rateMbit: 100, burst: '64kb', latency: '50ms' },
    timeoutS: null,
    swarmBin: DEFAULT_SWARM_BIN,
    swarmGetArgs: null,
    swarmServeArgs: null,
    swarmTrackerArgs: null,
    keep: false,
    linkCheck: true,
    ...o,
  };
}

if (isMain(import.meta.url)) {
  const o = parseOptions('node dist/bench/flash-crowd.js [options]: 1 seeder, N downloaders at once, 100 Mbit/s uploads, aria2c against swarm (root)', {
    peers: nums([4, 8, 16], 'numbers of downloaders (1..200)'),
    mib: num(64, 'file size in MiB'),
    rounds: num(1, 'rounds (contender order alternates)'),
    tools: oneOf(CONTENDERS, [...CONTENDERS], 'contenders'),
    'piece-kib': num(256, 'torrent piece size in KiB (a power of two, 32..65536)'),
    'upload-mbit': num(100, "every peer's upload cap, Mbit/s"),
    burst: str('64kb', 'tbf bucket (tc syntax)'),
    latency: str('50ms', 'tbf queue latency (tc syntax)'),
    timeout: maybeNum('seconds a trial may take (default 60 + 3·N·F/U)'),
    'swarm-get-args': args('the downloader command line (placeholders {name} {outDir} {tracker} {addr} {port})'),
    'swarm-serve-args': args('the seeder command line'),
    'swarm-tracker-args': args('the tracker command line'),
    'swarm-bin': str(DEFAULT_SWARM_BIN, 'the swarm CLI to run'),
    dir: str('/tmp/swarm-bench', 'work folder'),
    results: str(DEFAULT_RESULTS_DIR, 'folder for the JSON record of the run'),
    keep: flag('keep the downloaded files'),
    'no-link-check': flag('skip measuring the shaped link first'),
    'hold-pages': flag('a VM: turn free page reporting off during the run, restored at exit (bench/lib/vm-pages.ts; root)'),
  });
  if (!o.peers.length || o.peers.some((n) => !Number.isInteger(n) || n < 1 || n > 200)) {
    console.error('--peers: whole numbers 1..200');
    process.exit(2);
  }
  if (!Number.isInteger(Math.log2(o['piece-kib'])) || o['piece-kib'] < 32 || o['piece-kib'] > 65536) {
    console.error('--piece-kib: a power of two, 32..65536');
    process.exit(2);
  }
  if (!(o.mib > 0)) {
    console.error('--mib: a positive number');
    process.exit(2);
  }
  runMain('flash-crowd', async (run) => {
    const skip = flashCrowdSkipReason();
    if (skip) {
      console.log(`flash-crowd bench skipped: ${skip}`);
      return 0;
    }
    const swarmBin = path.resolve(o['swarm-bin']);
    const { tools, notes } = flashCrowdTools(o.tools, swarmBin);
    if (!tools.length) {
      console.log(`flash-crowd bench skipped: nothing to run (${notes.join('; ')})`);
      return 0;
    }
    const opts = flashCrowdOptions({
      root: ensureDir(o.dir),
      mib: o.mib,
      peers: o.peers,
      rounds: Math.max(1, o.rounds),
      tools,
      pieceKiB: o['piece-kib'],
      tbf: { rateMbit: o['upload-mbit'], burst: o.burst, latency: o.latency },
      timeoutS: o.timeout,
      swarmBin,
      swarmGetArgs: o['swarm-get-args'],
      swarmServeArgs: o['swarm-serve-args'],
      swarmTrackerArgs: o['swarm-tracker-args'],
      keep: o.keep,
      linkCheck: !o['no-link-check'],
    });
    const started = new Date();
    console.log(`flash-crowd — ${machine()}`);
    console.log(`1 seeder + N downloaders (N = ${opts.peers.join(', ')}), ${opts.mib} MiB, every peer's upload capped at ${opts.tbf.rateMbit} Mbit/s (tbf burst ${opts.tbf.burst} latency ${opts.tbf.latency}); contenders: ${tools.join(', ')}; ${opts.rounds} round(s)`);
    const held = o['hold-pages'] ? holdFreePages() : null;
    const s = await flashCrowdSection(run, opts, held ? [...notes, held] : notes);
    console.log(`\n${s.text}`);
    const file = writeResults(o.results, 'flash-crowd', started, s.record);
    console.log(`results: ${shownPath(file)}`);
    return s.failures ? 1 : 0;
  });
}
