/**
 * Flash crowd (root only): one seeder and N downloaders that all start at the same moment, every
 * peer's UPLOAD capped at 100 Mbit/s, one fresh file of random data. How long until every
 * downloader has the whole file? Two contenders in the same run, alternating, on the same network:
 *
 *   aria2c   BitTorrent: a .torrent made by mktorrent, Debian's opentracker as the tracker (it only
 *            serves info-hashes in its whitelist), an aria2c seeding the complete file, and N
 *            aria2c leechers that keep seeding what they have (DHT and LPD off, PEX on).
 *   swarm    a `swarm tracker`, a `swarm serve` seeder and N `swarm get` downloaders (command lines
 *            in SWARM_COMMANDS below; `--swarm-get-args` replaces the downloader's; when `swarm get
 *            --help` lacks --host or --seed, a plain get that does not share is run, and said so).
 *
 * and, computed rather than measured, the bound for a swarm where every peer uploads at U:
 * max(F/U_seed, N·F/(U_seed + N·U)), with U_seed = U = 100 Mbit/s.
 *
 * The network (bench/lib/netns.ts): a hub namespace with a bridge (and the trackers, on
 * 169.254.200.1, not rate-limited) and one namespace per peer (seeder 169.254.200.10, downloader
 * k on 169.254.200.(10+k)), each joined to the bridge by a veth pair whose end in the peer's
 * namespace is shaped with `tc qdisc ... tbf rate 100mbit burst 64kb latency 50ms` (egress = the
 * peer's upload; downloads are not capped). Namespaces are named swfc<pid>h and swfc<pid>p<i>
 * (bench/scaling.ts uses swb<n>* and 169.254.101-108.*, so both can run at once). Everything is
 * deleted at the end, on failure and on Ctrl-C; processes are stopped by PID and their exits
 * awaited before any folder is deleted.
 *
 * Time is measured from the common start (just before the N downloaders are spawned, all at once)
 * until each downloader has the complete file:
 *   aria2c: the moment aria2c calls its --on-bt-download-complete hook (every piece received and
 *           SHA-1-checked; aria2c then goes on seeding). The file's size is no signal here: aria2c
 *           writes pieces where they belong, so the file reaches full size before it is complete.
 *   swarm:  the moment NAME appears at full size (swarm renames its part file only when every
 *           chunk matched its hash), polled every 25 ms, or its `done` event, whichever is first.
 * Before the trials, one TCP stream from the seeder's namespace to downloader 1's checks the shaping
 * (11.95 MB/s of payload expected: 1448/1514 of 12.5 MB/s at MTU 1500; `--no-link-check` skips it).
 * After all downloaders are done (or the time-out), every process is stopped and each downloaded
 * file's SHA-256 is compared with the source's: "bytes ok k/N". Any failed check makes the exit
 * code 1. aria2c does not fsync what it wrote; swarm does, before its rename.
 *
 *   node dist/bench/flash-crowd.js [--peers 4,8,16] [--mib 64] [--rounds 1] [--tools aria2c,swarm]
 *        [--piece-kib 256] [--upload-mbit 100] [--burst 64kb] [--latency 50ms] [--timeout SECONDS]
 *        [--swarm-get-args "get {name} -o {outDir} --tracker {tracker} --json"]
 *        [--swarm-serve-args "..."] [--swarm-tracker-args "..."] [--swarm-bin dist/bin/swarm.js]
 *        [--dir /tmp/swarm-bench] [--keep] [--no-link-check]
 *
 * Prints a markdown table (rates in MB/s = 10^6 B/s) and writes bench/results/flash-crowd-<time>.json.
 * Not root, or no `ip`/`tc`: prints why and exits 0. aria2c, opentracker or mktorrent missing:
 * says `apt-get install -y aria2 opentracker mktorrent` and runs swarm alone.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, fmt, table } from './lib/stats.js';
import {
  Aborted,
  Procs,
  createLab,
  deleteStaleLabs,
  ensureDir,
  httpGetIn,
  measureTcp,
  netnsSkipReason,
  runBounded,
  sha256File,
  waitUntil,
  which,
  writeRandomFile,
  type Exit,
  type Lab,
  type LabPeer,
  type Proc,
  type TbfSpec,
} from './lib/netns.js';

// ---------------------------------------------------------------------------------------------
// the command lines (easy to change). Placeholders in braces are filled in per process:
//   {addr} this peer's address   {port} its listening port   {tracker} host:port of the tracker
//   {name} the file's name       {seedDir} the seeder's folder {outDir} the downloader's folder

export const SWARM_COMMANDS = {
  tracker: ['tracker', '--host', '{addr}', '--port', '{port}', '--json'],
  seeder: ['serve', '{seedDir}', '--host', '{addr}', '--port', '{port}', '--tracker', '{tracker}', '--json'],
  /** downloaders that also serve what they have (the CLI is gaining --host and --seed) */
  downloader: ['get', '{name}', '-o', '{outDir}', '--tracker', '{tracker}', '--host', '{addr}', '--json', '--seed'],
  /** used when `swarm get --help` lacks an option of `downloader`: a plain get that does not share */
  downloaderFallback: ['get', '{name}', '-o', '{outDir}', '--tracker', '{tracker}', '--json'],
};
export const SWARM_TRACKER_PORT = 7077;
export const SWARM_PEER_PORT = 7070;

/** Shared by the aria2c seeder and leechers. */
export const ARIA2_COMMON = [
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=true',
  '--disable-ipv6=true',
  '--interface={addr}',
  '--listen-port={port}',
  '--seed-ratio=0.0', // seed until stopped, whatever the ratio
  '--file-allocation=none',
  '--allow-overwrite=true',
  '--auto-file-renaming=false',
  '--show-console-readout=false',
  '--summary-interval=0',
  '--console-log-level=warn',
  '--stop-with-process={benchPid}', // in case this bench dies without stopping it
];
export const ARIA2_COMMANDS = {
  /** -V: hash-check the complete file once, then seed it */
  seeder: [...ARIA2_COMMON, '--check-integrity=true', '-d', '{seedDir}', '{torrent}'],
  leecher: [...ARIA2_COMMON, '--on-bt-download-complete={hook}', '-d', '{outDir}', '{torrent}'],
  /** -d: chroot; -w: the whitelist, a path INSIDE the chroot; drops root for nobody after chroot */
  opentracker: ['-i', '{addr}', '-p', '{port}', '-d', '{chroot}', '-u', 'nobody', '-w', '/whitelist.txt'],
  mktorrent: ['-a', 'http://{addr}:{port}/announce', '-l', '{pieceLog2}', '-n', '{name}', '-o', '{torrent}', '{file}'],
};
export const ARIA2_PORT = 6881;
export const OPENTRACKER_PORT = 6969;

/** The hook aria2c runs when a leecher has every piece ($3 = path of the file): stamp the time. */
const DONE_HOOK = `#!/bin/sh
# aria2c --on-bt-download-complete: $1 GID, $2 number of files, $3 path of the first file
date +%s.%N > "$3.flash-done"
`;

export const NS_PREFIX = 'swfc';
export const SUBNET = '169.254.200';
const NAME = 'big.bin';

// ---------------------------------------------------------------------------------------------

export type Contender = 'aria2c' | 'swarm';

export interface DownloaderResult {
  index: number;
  addr: string;
  /** seconds from the common start until the file was complete, null if it never was */
  seconds: number | null;
  exit: Exit | null;
  bytesOk: boolean;
  note?: string;
}

export interface Trial {
  round: number;
  n: number;
  contender: Contender;
  boundSeconds: number;
  allDone: number | null;
  first: number | null;
  last: number | null;
  bytesOk: number;
  downloaders: DownloaderResult[];
  error?: string;
}

export interface FlashCrowdOptions {
  root: string;
  mib: number;
  peers: number[];
  rounds: number;
  tools: Contender[];
  pieceKiB: number;
  tbf: TbfSpec;
  timeoutS: number | null;
  swarmBin: string;
  swarmGetArgs: string[] | null;
  swarmServeArgs: string[] | null;
  swarmTrackerArgs: string[] | null;
  keep: boolean;
  linkCheck: boolean;
}

export interface Run {
  trials: Trial[];
  notes: string[];
  interrupted: boolean;
  commands: Record<string, string[]>;
  linkCheck?: { bytes: number; bytesPerS: number } | null;
}

const nowMs = () => performance.timeOrigin + performance.now();

function fill(template: string[], vars: Record<string, string | number>): string[] {
  return template.map((a) =>
    a.replace(/\{(\w+)\}/g, (_, k: string) => {
      if (!(k in vars)) throw new Error(`unknown placeholder {${k}} in ${template.join(' ')}`);
      return String(vars[k]);
    }),
  );
}

/** The bound in seconds: max(F/U_seed, N·F/(U_seed + N·U)). */
export function boundSeconds(bytes: number, n: number, uploadBytesPerS: number, seedBytesPerS = uploadBytesPerS): number {
  return Math.max(bytes / seedBytesPerS, (n * bytes) / (seedBytesPerS + n * uploadBytesPerS));
}

/** SHA-1 of the bencoded `info` value of a .torrent: its info-hash. */
export function torrentInfoHash(t: Buffer): Buffer {
  const end = (at: number): number => {
    if (at >= t.length) throw new Error('truncated torrent');
    const c = t[at]!;
    if (c === 0x69) {
      const e = t.indexOf(0x65, at);
      if (e < 0) throw new Error('bad integer in torrent');
      return e + 1;
    }
    if (c === 0x6c || c === 0x64) {
      let p = at + 1;
      while (t[p] !== 0x65) p = end(p);
      return p + 1;
    }
    const colon = t.indexOf(0x3a, at);
    const len = Number(t.toString('latin1', at, colon));
    if (colon < 0 || !Number.isInteger(len)) throw new Error('bad string in torrent');
    return colon + 1 + len;
  };
  if (t[0] !== 0x64) throw new Error('torrent is not a dictionary');
  for (let p = 1; t[p] !== 0x65; ) {
    const keyEnd = end(p);
    const key = t.toString('latin1', t.indexOf(0x3a, p) + 1, keyEnd);
    const valEnd = end(keyEnd);
    if (key === 'info') return createHash('sha1').update(t.subarray(keyEnd, valEnd)).digest();
    p = valEnd;
  }
  throw new Error('torrent has no info dictionary');
}

export function flashCrowdSkipReason(): string | null {
  return netnsSkipReason();
}

function tailOf(p: Proc | undefined, lines = 8): string {
  return p ? p.tail.slice(-lines).map((l) => `    ${l}`).join('\n') : '';
}

/**
 * Run the bench. `signal` aborts it (Ctrl-C): waits end at once, every process is stopped, folders
 * and namespaces are deleted, and what was measured so far is returned.
 */
export async function flashCrowd(opts: FlashCrowdOptions, signal: AbortSignal, lab: Lab, procs: Procs, onTrial?: (t: Trial) => void): Promise<Run> {
  const bytes = opts.mib * 2 ** 20;
  const U = (opts.tbf.rateMbit * 1e6) / 8;
  const run: Run = { trials: [], notes: [], interrupted: false, commands: {} };
  const note = (s: string) => {
    run.notes.push(s);
    process.stderr.write(`flash-crowd: ${s}\n`);
  };
  const hub = lab.hub;
  const seederPeer = lab.peers[0]!;
  const work = ensureDir(path.join(opts.root, `flash-crowd-${process.pid}`));
  const source = path.join(work, NAME);
  let clean = true; // every process stopped: the work folder may go
  try {
    process.stderr.write(`flash-crowd: writing ${opts.mib} MiB of fresh random data...\n`);
    writeRandomFile(source, bytes);
    const sourceSha = (await sha256File(source))!;

    // ---- the shaped link, measured once: one TCP stream from the seeder to downloader 1
    if (opts.linkCheck && lab.peers[1]) {
      const probe = Math.min(bytes, 32 << 20);
      const rate = await measureTcp(lab, procs, seederPeer, lab.peers[1], probe, 9009, signal);
      run.linkCheck = rate === null ? null : { bytes: probe, bytesPerS: rate };
      note(
        rate === null
          ? 'link check failed: one TCP stream between two namespaces did not complete'
          : `link check: one TCP stream of ${probe / 2 ** 20} MiB through the ${opts.tbf.rateMbit} Mbit/s tbf: ${fmt(rate / 1e6, 2)} MB/s of payload = ${fmt((rate / U) * 100, 1)}% of the line rate (1448/1514 = 95.6% is the most TCP at MTU 1500 can carry)`,
      );
    }

    // ---- BitTorrent side: torrent, whitelist in the tracker's chroot, completion hook (once)
    let torrent = '';
    const chroot = ensureDir(path.join(work, 'opentracker'));
    const hook = path.join(work, 'done-hook.sh');
    if (opts.tools.includes('aria2c')) {
      torrent = path.join(work, `${NAME}.torrent`);
      const pieceLog2 = Math.log2(opts.pieceKiB * 1024);
      const mk = fill(ARIA2_COMMANDS.mktorrent, { addr: lab.hubAddr, port: OPENTRACKER_PORT, pieceLog2, name: NAME, torrent, file: source });
      run.commands.mktorrent = ['mktorrent', ...mk];
      const r = spawnSync('mktorrent', mk, { encoding: 'utf8', timeout: 120_000 });
      if (r.status !== 0) throw new Error(`mktorrent failed: ${r.stderr}`);
      const hash = torrentInfoHash(readFileSync(torrent));
      // opentracker chroots to `chroot` and then runs as nobody: both must be able to read
      chmodSync(chroot, 0o755);
      writeFileSync(path.join(chroot, 'whitelist.txt'), hash.toString('hex') + '\n', { mode: 0o644 });
      writeFileSync(hook, DONE_HOOK, { mode: 0o755 });
      run.commands.opentracker = ['opentracker', ...fill(ARIA2_COMMANDS.opentracker, { addr: lab.hubAddr, port: OPENTRACKER_PORT, chroot })];
      run.commands.aria2cSeeder = ['aria2c', ...fill(ARIA2_COMMANDS.seeder, { addr: seederPeer.addr, port: ARIA2_PORT, benchPid: process.pid, seedDir: '{seedDir}', torrent })];
      run.commands.aria2cLeecher = ['aria2c', ...fill(ARIA2_COMMANDS.leecher, { addr: '{addr}', port: ARIA2_PORT, benchPid: process.pid, hook, outDir: '{outDir}', torrent })];
      note(`torrent: ${opts.pieceKiB} KiB pieces, info-hash ${hash.toString('hex')}`);
    }

    // ---- swarm side: which downloader command line this CLI takes
    const swarmTracker = `${lab.hubAddr}:${SWARM_TRACKER_PORT}`;
    let swarmGet = opts.swarmGetArgs ?? SWARM_COMMANDS.downloader;
    if (opts.tools.includes('swarm') && !opts.swarmGetArgs) {
      const help = spawnSync(process.execPath, [opts.swarmBin, 'get', '--help'], { encoding: 'utf8', timeout: 30_000 }).stdout ?? '';
      const missing = SWARM_COMMANDS.downloader.filter((a) => a.startsWith('--') && !help.includes(a.split('=')[0]!));
      if (missing.length) {
        swarmGet = SWARM_COMMANDS.downloaderFallback;
        note(`swarm get has no ${missing.join(', ')} yet: downloaders run "${swarmGet.join(' ')}" (they do not share what they have)`);
      }
    }
    const swarmServe = opts.swarmServeArgs ?? SWARM_COMMANDS.seeder;
    const swarmTrackerCmd = opts.swarmTrackerArgs ?? SWARM_COMMANDS.tracker;
    if (opts.tools.includes('swarm')) {
      run.commands.swarmTracker = ['swarm', ...swarmTrackerCmd];
      run.commands.swarmSeeder = ['swarm', ...swarmServe];
      run.commands.swarmDownloader = ['swarm', ...swarmGet];
    }
    const swarm = (ns: string, args: string[]) => [...lab.exec(ns), process.execPath, opts.swarmBin, ...args];
    const swarmWho = async (timeoutMs: number) => (await runBounded(swarm(hub, ['who', NAME, '--tracker', swarmTracker, '--json']), timeoutMs)).code;
    const hashQuery = torrent ? [...torrentInfoHash(readFileSync(torrent))].map((b) => '%' + b.toString(16).padStart(2, '0')).join('') : '';
    const scrape = async (): Promise<number | null> => {
      const q = hashQuery;
      const body = await httpGetIn(lab.exec(hub), `http://${lab.hubAddr}:${OPENTRACKER_PORT}/scrape?info_hash=${q}`);
      if (!body) return null;
      const m = /8:completei(\d+)e/.exec(body.toString('latin1'));
      return m ? Number(m[1]) : 0;
    };

    // ---- the trials
    for (let round = 1; round <= opts.rounds; round++) {
      const order = round % 2 === 1 ? opts.tools : [...opts.tools].reverse();
      for (const n of opts.peers) {
        for (const contender of order) {
          if (signal.aborted) throw new Aborted();
          const bound = boundSeconds(bytes, n, U);
          const timeoutS = opts.timeoutS ?? 60 + 3 * ((n * bytes) / U);
          const trial: Trial = { round, n, contender, boundSeconds: bound, allDone: null, first: null, last: null, bytesOk: 0, downloaders: [] };
          const dir = ensureDir(path.join(work, `r${round}-n${n}-${contender}`));
          const seedDir = ensureDir(path.join(dir, 'seed'));
          copyFileSync(source, path.join(seedDir, NAME));
          const peers: LabPeer[] = lab.peers.slice(1, n + 1);
          const outs = peers.map((p) => ensureDir(path.join(dir, `d${p.index}`)));
          spawnSync('sync', { timeout: 60_000 }); // no writeback from the last trial in this one
          const dls: { proc?: Proc; doneAt: number | null; res: DownloaderResult }[] = peers.map((p) => ({
            doneAt: null,
            res: { index: p.index, addr: p.addr, seconds: null, exit: null, bytesOk: false },
          }));
          let tracker: Proc | undefined;
          let seeder: Proc | undefined;
          process.stderr.write(`flash-crowd: round ${round}, N=${n}, ${contender}: starting tracker and seeder...\n`);
          try {
            // tracker and seeder, each waited for (bounded)
            if (contender === 'aria2c') {
              tracker = procs.start('opentracker', [...lab.exec(hub), 'opentracker', ...fill(ARIA2_COMMANDS.opentracker, { addr: lab.hubAddr, port: OPENTRACKER_PORT, chroot })]);
              if (!(await waitUntil(async () => !!tracker!.exit || (await scrape()) !== null, { timeoutMs: 15_000, intervalMs: 200, signal })) || tracker.exit)
                throw new Error(`opentracker did not answer on ${lab.hubAddr}:${OPENTRACKER_PORT}\n${tailOf(tracker)}`);
              seeder = procs.start('aria2c seeder', [...lab.exec(seederPeer.ns), 'aria2c', ...fill(ARIA2_COMMANDS.seeder, { addr: seederPeer.addr, port: ARIA2_PORT, benchPid: process.pid, seedDir, torrent })]);
              if (!(await waitUntil(async () => !!seeder!.exit || ((await scrape()) ?? 0) >= 1, { timeoutMs: 30_000 + bytes / 20e3, intervalMs: 200, signal })) || seeder.exit)
                throw new Error(`the aria2c seeder never showed up as complete at the tracker\n${tailOf(seeder)}\n${tailOf(tracker)}`);
            } else {
              tracker = procs.start('swarm tracker', swarm(hub, fill(swarmTrackerCmd, { addr: lab.hubAddr, port: SWARM_TRACKER_PORT })));
              // `who` exits 3 (not found) once the tracker answers, 0 once a holder registered
              if (!(await waitUntil(async () => !!tracker!.exit || [0, 3].includes((await swarmWho(10_000)) ?? -1), { timeoutMs: 20_000, intervalMs: 200, signal })) || tracker.exit)
                throw new Error(`swarm tracker did not answer on ${swarmTracker}\n${tailOf(tracker)}`);
              seeder = procs.start('swarm seeder', swarm(seederPeer.ns, fill(swarmServe, { addr: seederPeer.addr, port: SWARM_PEER_PORT, seedDir, tracker: swarmTracker, name: NAME })));
              if (!(await waitUntil(async () => !!seeder!.exit || (await swarmWho(10_000)) === 0, { timeoutMs: 30_000 + bytes / 20e3, intervalMs: 250, signal })) || seeder.exit)
                throw new Error(`the swarm seeder never registered ${NAME} with the tracker\n${tailOf(seeder)}`);
            }

            // the flash crowd: all downloaders at once
            const t0 = nowMs();
            peers.forEach((p, k) => {
              const dl = dls[k]!;
              const vars = { addr: p.addr, port: contender === 'aria2c' ? ARIA2_PORT : SWARM_PEER_PORT, name: NAME, outDir: outs[k]!, tracker: swarmTracker, benchPid: process.pid, hook, torrent };
              const argv =
                contender === 'aria2c' ? [...lab.exec(p.ns), 'aria2c', ...fill(ARIA2_COMMANDS.leecher, vars)] : swarm(p.ns, fill(swarmGet, vars));
              dl.proc = procs.start(`${contender} downloader ${p.index}`, argv, {
                onLine: (line, at) => {
                  if (contender === 'swarm' && dl.doneAt === null && line.includes('"event":"done"')) dl.doneAt = at;
                },
              });
            });
            process.stderr.write(`flash-crowd: round ${round}, N=${n}, ${contender}: ${n} downloaders started (bound ${fmt(bound, 2)} s, time-out ${fmt(timeoutS, 0)} s)\n`);
            const isDone = (k: number): boolean => {
              const dl = dls[k]!;
              if (dl.doneAt !== null) return true;
              const file = path.join(outs[k]!, NAME);
              if (contender === 'aria2c') {
                const stamp = existsSync(file + '.flash-done') ? Number(readFileSync(file + '.flash-done', 'utf8').trim()) : NaN;
                if (stamp > 0) dl.doneAt = stamp * 1000;
              } else if (statSync(file, { throwIfNoEntry: false })?.size === bytes) dl.doneAt = nowMs();
              return dl.doneAt !== null;
            };
            const settled = await waitUntil(
              () => {
                let open = 0;
                dls.forEach((dl, k) => {
                  if (isDone(k) || dl.res.note) return;
                  if (dl.proc!.exit) {
                    // exited: done just now (a plain get exits when done), or failed
                    if (!isDone(k)) dl.res.note = `exited (${dl.proc!.exit.code ?? dl.proc!.exit.signal}) before the file was complete`;
                    return;
                  }
                  open++;
                });
                return open === 0;
              },
              { timeoutMs: timeoutS * 1000, intervalMs: 25, signal },
            );
            dls.forEach((dl) => {
              if (dl.doneAt !== null) dl.res.seconds = Math.max(0, (dl.doneAt - t0) / 1000);
              else if (!dl.res.note && !settled) dl.res.note = `not complete after the ${fmt(timeoutS, 0)} s time-out`;
            });
          } catch (e) {
            if (e instanceof Aborted) {
              run.interrupted = true;
              trial.error = 'interrupted';
            } else trial.error = (e as Error).message;
          } finally {
            // stop everything of this trial (by PID, exits awaited) before reading or deleting files
            const stopped = await procs.stopAll();
            if (!stopped) {
              clean = false;
              note(`some processes of round ${round}, N=${n}, ${contender} would not exit: ${dir} is kept`);
            }
            for (const dl of dls) dl.res.exit = dl.proc?.exit ?? null;
          }
          // bytes: SHA-256 of every downloader's file against the source (skipped on Ctrl-C)
          if (!run.interrupted) {
            for (const [k, dl] of dls.entries()) {
              dl.res.bytesOk = (await sha256File(path.join(outs[k]!, NAME))) === sourceSha;
              if (!dl.res.bytesOk && dl.res.seconds !== null) dl.res.note = 'complete, but the bytes differ from the source';
            }
          }
          trial.downloaders = dls.map((d) => d.res);
          trial.bytesOk = trial.downloaders.filter((d) => d.bytesOk).length;
          const times = trial.downloaders.map((d) => d.seconds).filter((s): s is number => s !== null);
          if (times.length) {
            trial.first = Math.min(...times);
            trial.last = Math.max(...times);
          }
          if (times.length === n && trial.bytesOk === n) trial.allDone = trial.last;
          for (const [k, dl] of dls.entries()) {
            if (dl.res.note || (!dl.res.bytesOk && !run.interrupted)) process.stderr.write(`  downloader ${dl.res.index} (${dl.res.addr}): ${dl.res.note ?? 'bytes differ'}\n${tailOf(dls[k]!.proc, 6)}\n`);
          }
          if (trial.error) process.stderr.write(`  error: ${trial.error}\n`);
          run.trials.push(trial);
          onTrial?.(trial);
          if (clean && !opts.keep) rmSync(dir, { recursive: true, force: true });
          if (run.interrupted) throw new Aborted();
        }
      }
    }
  } catch (e) {
    if (!(e instanceof Aborted)) throw e;
    run.interrupted = true;
  } finally {
    if (!(await procs.stopAll())) clean = false;
    if (clean && !opts.keep) rmSync(work, { recursive: true, force: true });
    else process.stderr.write(`flash-crowd: files kept in ${work}\n`);
  }
  return run;
}

// ---------------------------------------------------------------------------------------------
// the table

const s2 = (x: number | null) => (x === null ? '—' : fmt(x, 2));

export function summaryRows(trials: Trial[], mib: number): { rows: (string | number)[][]; json: Record<string, unknown>[] } {
  const rows: (string | number)[][] = [];
  const json: Record<string, unknown>[] = [];
  trials = trials.filter((t) => t.error !== 'interrupted'); // cut short by Ctrl-C: nothing to report
  const ns = [...new Set(trials.map((t) => t.n))];
  const contenders = [...new Set(trials.map((t) => t.contender))].sort();
  const med = (xs: (number | null)[]) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  const allDoneOf = new Map<string, number | null>();
  for (const n of ns) for (const c of contenders) allDoneOf.set(`${n}/${c}`, med(trials.filter((t) => t.n === n && t.contender === c).map((t) => t.allDone)));
  for (const n of ns) {
    for (const c of contenders) {
      const ts = trials.filter((t) => t.n === n && t.contender === c);
      if (!ts.length) continue;
      const allDone = allDoneOf.get(`${n}/${c}`) ?? null;
      const partial = ts.some((t) => t.allDone === null);
      const aria = allDoneOf.get(`${n}/aria2c`) ?? null;
      const bound = ts[0]!.boundSeconds;
      const ok = ts.reduce((a, t) => a + t.bytesOk, 0);
      const of = ts.reduce((a, t) => a + t.n, 0);
      const first = med(ts.map((t) => t.first));
      const last = med(ts.map((t) => t.last));
      const mbps = allDone === null ? null : (n * mib * 2 ** 20) / allDone / 1e6;
      rows.push([
        n,
        c,
        allDone === null ? 'not all' : s2(allDone) + (partial ? '*' : ''),
        s2(first),
        s2(last),
        `${ok}/${of}`,
        allDone !== null && aria !== null ? fmt(allDone / aria, 2) : '—',
        allDone !== null ? fmt(allDone / bound, 2) : '—',
        fmt(bound, 2),
        mbps === null ? '—' : fmt(mbps, 1),
      ]);
      json.push({ peers: n, contender: c, rounds: ts.length, allDoneS: allDone, firstS: first, lastS: last, bytesOk: ok, bytesChecked: of, ratioToAria2c: allDone !== null && aria !== null ? allDone / aria : null, ratioToBound: allDone !== null ? allDone / bound : null, boundS: bound, deliveredMBps: mbps });
    }
  }
  return { rows, json };
}

export const TABLE_HEADERS = ['N', 'contender', 'all done (s)', 'first (s)', 'last (s)', 'bytes ok', '× aria2c', '× bound', 'bound (s)', 'delivered MB/s'];

// ---------------------------------------------------------------------------------------------
// command line

function repoRoot(): string {
  // dist/bench/flash-crowd.js or bench/flash-crowd.ts: the folder above that has package.json
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(d, 'package.json'))) return d;
    d = path.dirname(d);
  }
  return process.cwd();
}

function machine(): string {
  return `${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, node ${process.version}`;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const opt = (n: string, d: string) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1]! : d);
  const has = (n: string) => args.includes(`--${n}`);
  const words = (s: string) => s.split(/\s+/).filter(Boolean);
  const skip = flashCrowdSkipReason();
  if (skip) {
    console.log(`flash-crowd bench skipped: ${skip}`);
    return 0;
  }
  const root = repoRoot();
  const swarmBin = path.resolve(opt('swarm-bin', path.join(root, 'dist/bin/swarm.js')));
  const notes: string[] = [];
  let tools = opt('tools', 'aria2c,swarm').split(',').filter(Boolean) as Contender[];
  for (const t of tools) if (t !== 'aria2c' && t !== 'swarm') throw new Error(`--tools: unknown contender ${t} (aria2c, swarm)`);
  const missingBt = ['aria2c', 'opentracker', 'mktorrent'].filter((t) => !which(t));
  if (tools.includes('aria2c') && missingBt.length) {
    notes.push(`${missingBt.join(', ')} missing (apt-get install -y aria2 opentracker mktorrent): aria2c left out`);
    tools = tools.filter((t) => t !== 'aria2c');
  }
  if (tools.includes('swarm') && !existsSync(swarmBin)) {
    notes.push(`${swarmBin} not found (npm run build, or --swarm-bin): swarm left out`);
    tools = tools.filter((t) => t !== 'swarm');
  }
  for (const n of notes) console.log(`note: ${n}`);
  if (!tools.length) {
    console.log('flash-crowd bench skipped: nothing to run');
    return 0;
  }
  const peers = opt('peers', '4,8,16').split(',').map(Number);
  if (peers.some((n) => !Number.isInteger(n) || n < 1 || n > 200)) throw new Error('--peers: whole numbers 1..200');
  const pieceKiB = Number(opt('piece-kib', '256'));
  if (!Number.isInteger(Math.log2(pieceKiB)) || pieceKiB < 32 || pieceKiB > 65536) throw new Error('--piece-kib: a power of two, 32..65536');
  const opts: FlashCrowdOptions = {
    root: ensureDir(opt('dir', '/tmp/swarm-bench')),
    mib: Number(opt('mib', '64')),
    peers,
    rounds: Math.max(1, Number(opt('rounds', '1'))),
    tools,
    pieceKiB,
    tbf: { rateMbit: Number(opt('upload-mbit', '100')), burst: opt('burst', '64kb'), latency: opt('latency', '50ms') },
    timeoutS: has('timeout') ? Number(opt('timeout', '0')) : null,
    swarmBin,
    swarmGetArgs: has('swarm-get-args') ? words(opt('swarm-get-args', '')) : null,
    swarmServeArgs: has('swarm-serve-args') ? words(opt('swarm-serve-args', '')) : null,
    swarmTrackerArgs: has('swarm-tracker-args') ? words(opt('swarm-tracker-args', '')) : null,
    keep: has('keep'),
    linkCheck: !has('no-link-check'),
  };
  if (!(opts.mib > 0)) throw new Error('--mib: a positive number');

  const started = new Date();
  const procs = new Procs();
  const abort = new AbortController();
  let lab: Lab | null = null;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals === 1) {
      process.stderr.write(`\nflash-crowd: ${sig}: stopping every process, then deleting the namespaces (again to force)\n`);
      abort.abort();
      return;
    }
    procs.killAllSync();
    lab?.destroy();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => {
    procs.killAllSync();
    lab?.destroy();
  });

  const stale = await deleteStaleLabs(NS_PREFIX);
  if (stale.length) console.log(`note: deleted namespaces left by an earlier run that was killed: ${stale.join(', ')}`);
  for (const pid of new Set(stale.map((ns) => ns.slice(NS_PREFIX.length).replace(/\D.*$/, '')))) {
    const dir = path.join(opts.root, `flash-crowd-${pid}`);
    if (existsSync(dir)) {
      rmSync(dir, { recursive: true, force: true });
      console.log(`note: deleted ${dir}, the work folder of that run`);
    }
  }
  console.log(`flash-crowd — ${machine()}`);
  console.log(`1 seeder + N downloaders (N = ${peers.join(', ')}), ${opts.mib} MiB, every peer's upload capped at ${opts.tbf.rateMbit} Mbit/s (tbf burst ${opts.tbf.burst} latency ${opts.tbf.latency}); contenders: ${tools.join(', ')}; ${opts.rounds} round(s)`);
  let run: Run | null = null;
  let failure: Error | null = null;
  const trials: Trial[] = [];
  try {
    lab = createLab({ prefix: NS_PREFIX, peers: Math.max(...peers) + 1, subnet: SUBNET, tbf: opts.tbf });
    run = await flashCrowd(opts, abort.signal, lab, procs, (t) => {
      trials.push(t);
      process.stderr.write(
        t.error === 'interrupted'
          ? `flash-crowd: round ${t.round}, N=${t.n}, ${t.contender}: interrupted (left out of the table)\n`
          : `flash-crowd: round ${t.round}, N=${t.n}, ${t.contender}: all done ${s2(t.allDone)} s, first ${s2(t.first)} s, last ${s2(t.last)} s, bytes ok ${t.bytesOk}/${t.n}\n`,
      );
    });
  } catch (e) {
    failure = e as Error;
  } finally {
    await procs.stopAll();
    lab?.destroy();
    lab = null;
    // the table, whatever happened
    const { rows, json } = summaryRows(trials, opts.mib);
    const U = (opts.tbf.rateMbit * 1e6) / 8;
    console.log(`\nFlash crowd: ${opts.mib} MiB from 1 seeder to N downloaders started at once, every peer's upload capped at ${opts.tbf.rateMbit} Mbit/s (tc tbf) in network namespaces${opts.rounds > 1 ? `; medians of ${opts.rounds} rounds` : ''}`);
    console.log(rows.length ? table(TABLE_HEADERS, rows) : '(no trial finished)');
    console.log(
      `times from the common start until each downloader had the whole file; bytes ok = SHA-256 equal to the source; ` +
        `bound = max(F/U, N·F/(U + N·U)) with U = ${opts.tbf.rateMbit} Mbit/s = ${fmt(U / 1e6, 1)} MB/s (MB/s = 10^6 B/s), which is F/U here; ` +
        `at MTU 1500 a tbf-shaped link carries at most 1448/1514 = 95.6% of its rate as TCP payload, so × bound cannot go below ~1.05; ` +
        `delivered MB/s = N·F / all done.` +
        (rows.some((r) => String(r[2]).endsWith('*')) ? ' * not every round had all downloaders done: median of those that did.' : ''),
    );
    for (const n of [...notes, ...(run?.notes ?? [])]) console.log(`note: ${n}`);
    if (run?.interrupted || signals) console.log('interrupted: the table holds what finished before Ctrl-C');
    if (failure) console.log(`failed: ${failure.message}`);
    const results = ensureDir(path.join(root, 'bench/results'));
    const stamp = started.toISOString().replace(/[:.]/g, '-');
    const file = path.join(results, `flash-crowd-${stamp}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          machine: machine(),
          started,
          config: { ...opts, bytes: opts.mib * 2 ** 20, uploadBytesPerS: U, subnet: `${SUBNET}.0/24`, commands: run?.commands ?? {} },
          linkCheck: run?.linkCheck ?? null,
          summary: json,
          trials,
          notes: [...notes, ...(run?.notes ?? [])],
          interrupted: !!run?.interrupted || signals > 0,
          error: failure?.message ?? null,
        },
        null,
        2,
      ),
    );
    console.log(`results: ${path.relative(process.cwd(), file) || file}`);
  }
  const bytesFailed = trials.some((t) => t.bytesOk < t.n);
  if (signals || run?.interrupted) return 130;
  if (failure || bytesFailed) return 1;
  return 0;
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  main().then(
    (code) => process.exit(code),
    (e: Error) => {
      console.error(`flash-crowd: ${e.message}`);
      process.exit(2);
    },
  );
}
