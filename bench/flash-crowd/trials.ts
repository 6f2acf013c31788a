/**
 * The flash crowd's trials: for each round, N and contender (alternating order between rounds),
 * a fresh copy of the source for the seeder, the contender's tracker and seeder, then all N
 * downloaders started at once and watched until each is complete (or the time-out). Then every
 * process of the trial is stopped by PID, exits awaited, before any file is read or deleted; each
 * downloader's file is compared with the source's SHA-256 (hashed once). Before the trials, one
 * TCP stream from the seeder to downloader 1 measures the shaped link.
 *
 *   source ─► per trial: seed copy ─► tracker + seeder ─► N downloaders at t0 ─► done times
 *                                        └── stop all (by PID, awaited) ─► SHA-256 ─► Trial
 */
import { appendFileSync, copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ensureDir, makeRandomFile, SourceHash } from '../lib/files.js';
import { measureTcp } from '../lib/probes.js';
import { tailOf, type Proc, type Procs } from '../lib/procs.js';
import type { Lab, LabPeer } from '../lib/netns.js';
import { fmt } from '../lib/stats.js';
import { Aborted, waitUntil } from '../lib/wait.js';
import { bittorrentSide } from './bittorrent.js';
import { swarmSide } from './swarm-side.js';
import { UplinkWatch } from './uplinks.js';
import { cpuMark, cpuSince, type CpuMark } from '../lib/machine-cpu.js';
import { tcpCounts, tcpSince } from './tcp-stats.js';
import { boundSeconds, NAME, nowMs, type ContenderSide, type DownloaderResult, type FlashCrowdOptions, type SideContext, type Trial } from './common.js';

export interface FlashRun {
  trials: Trial[];
  notes: string[];
  interrupted: boolean;
  commands: Record<string, string[]>;
  linkCheck?: { bytes: number; bytesPerS: number } | null;
}

/**
 * Run the trials. `signal` aborts (Ctrl-C): waits end at once, every process is stopped, folders
 * are deleted, and what was measured so far is returned.
 */
export async function flashCrowd(opts: FlashCrowdOptions, signal: AbortSignal, lab: Lab, procs: Procs, onTrial?: (t: Trial) => void): Promise<FlashRun> {
  const bytes = Math.round(opts.mib * 2 ** 20);
  const U = (opts.tbf.rateMbit * 1e6) / 8;
  const run: FlashRun = { trials: [], notes: [], interrupted: false, commands: {} };
  const note = (s: string) => {
    run.notes.push(s);
    process.stderr.write(`flash-crowd: ${s}\n`);
  };
  const work = ensureDir(path.join(opts.root, `flash-crowd-${process.pid}`));
  const source = path.join(work, NAME);
  let clean = true; // every process stopped: the work folder may go
  try {
    process.stderr.write(`flash-crowd: writing ${opts.mib} MiB of fresh random data...\n`);
    makeRandomFile(source, bytes);
    const sourceHash = await SourceHash.of(source);

    // the shaped link, measured once: one TCP stream from the seeder to downloader 1
    if (opts.linkCheck && lab.peers[1]) {
      const probe = Math.min(bytes, 32 << 20);
      const rate = await measureTcp(lab, procs, lab.peers[0]!, lab.peers[1], probe, 9009, signal);
      run.linkCheck = rate === null ? null : { bytes: probe, bytesPerS: rate };
      note(
        rate === null
          ? 'link check failed: one TCP stream between two namespaces did not complete'
          : `link check: one TCP stream of ${probe / 2 ** 20} MiB through the ${opts.tbf.rateMbit} Mbit/s tbf: ${fmt(rate / 1e6, 2)} MB/s of payload = ${fmt((rate / U) * 100, 1)}% of the line rate (1448/1514 = 95.6% is the most TCP at MTU 1500 can carry)`,
      );
    }

    const ctx: SideContext = { opts, lab, procs, signal, work, source, bytes, note };
    const sides = new Map<string, ContenderSide>();
    if (opts.tools.includes('aria2c')) sides.set('aria2c', bittorrentSide(ctx));
    if (opts.tools.includes('swarm')) sides.set('swarm', swarmSide(ctx));
    for (const s of sides.values()) Object.assign(run.commands, s.commands);

    for (let round = 1; round <= opts.rounds; round++) {
      const order = round % 2 === 1 ? opts.tools : [...opts.tools].reverse();
      for (const n of opts.peers) {
        for (const contender of order) {
          if (signal.aborted) throw new Aborted();
          const side = sides.get(contender)!;
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
          process.stderr.write(`flash-crowd: round ${round}, N=${n}, ${contender}: starting tracker and seeder...\n`);
          let t0 = 0;
          let cpu0: CpuMark | null = null;
          // (the seeder's namespace too: its retransmissions count as much as anyone's)
          const tcp0 = tcpCounts(lab, lab.peers.slice(0, n + 1));
          const uplinks = new UplinkWatch(lab, procs, n + 1, timeoutS + 300);
          try {
            await side.startSeed(seedDir);
            // the flash crowd: all downloaders at once
            t0 = nowMs();
            cpu0 = cpuMark();
            peers.forEach((p, k) => {
              const dl = dls[k]!;
              dl.proc = procs.start(`${contender} downloader ${p.index}`, side.downloader(p, outs[k]!), {
                onLine: (line, at) => {
                  dl.doneAt ??= side.doneFromLine(line, at);
                  // --keep: each downloader's output with the time since the crowd started, to read its timeline
                  if (opts.keep) appendFileSync(path.join(dir, `d${p.index}.log`), `${fmt((at - t0) / 1000, 3)} ${line}\n`);
                },
              });
            });
            process.stderr.write(`flash-crowd: round ${round}, N=${n}, ${contender}: ${n} downloaders started (bound ${fmt(bound, 2)} s, time-out ${fmt(timeoutS, 0)} s)\n`);
            const isDone = (k: number): boolean => (dls[k]!.doneAt ??= side.doneFromFiles(outs[k]!)) !== null;
            const settled = await waitUntil(
              () => {
                let open = 0;
                dls.forEach((dl, k) => {
                  if (isDone(k) || dl.res.note) return;
                  if (dl.proc!.exit) {
                    // exited: done just now (a plain get exits when done), or failed
                    if (!isDone(k)) dl.res.note = `exited (${dl.proc!.exit.code ?? dl.proc!.exit.signal}) before the file was complete: ${tailOf(dl.proc!).slice(-1500)}`;
                    return;
                  }
                  open++;
                });
                return open === 0;
              },
              { timeoutMs: timeoutS * 1000, intervalMs: 25, signal },
            );
            trial.cpu = cpuSince(cpu0);
            trial.tcp = tcpSince(tcp0, tcpCounts(lab, lab.peers.slice(0, n + 1)));
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
            if (!(await procs.stopAll())) {
              clean = false;
              note(`some processes of round ${round}, N=${n}, ${contender} would not exit: ${dir} is kept`);
            }
            for (const dl of dls) dl.res.exit = dl.proc?.exit ?? null;
          }
          // bytes: SHA-256 of every downloader's file against the source (skipped on Ctrl-C)
          if (!run.interrupted) {
            for (const [k, dl] of dls.entries()) {
              if (!dl.proc) {
                dl.res.note = 'not started: the trial failed before';
                continue;
              }
              dl.res.bytesOk = await sourceHash.matches(path.join(outs[k]!, NAME));
              if (!dl.res.bytesOk && dl.res.seconds !== null) dl.res.note = 'complete, but the bytes differ from the source';
            }
          }
          finishTrial(trial, dls, run.interrupted);
          if (trial.allDone !== null) trial.uplinks = uplinks.summary(t0, t0 + trial.allDone * 1000, U);
          // --keep: every uplink's use over time (percent of U in 250 ms bins), to read the ramp and the tail
          if (opts.keep && trial.allDone !== null) writeFileSync(path.join(dir, 'uplinks.txt'), uplinks.timeline(t0, t0 + trial.allDone * 1000, U));
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

/** Fill in a trial's times and counts from its downloaders, and say what went wrong. */
function finishTrial(trial: Trial, dls: { proc?: Proc; res: DownloaderResult }[], interrupted: boolean): void {
  trial.downloaders = dls.map((d) => d.res);
  trial.bytesOk = trial.downloaders.filter((d) => d.bytesOk).length;
  const times = trial.downloaders.map((d) => d.seconds).filter((s): s is number => s !== null);
  if (times.length) {
    trial.first = Math.min(...times);
    trial.last = Math.max(...times);
  }
  if (times.length === trial.n && trial.bytesOk === trial.n) trial.allDone = trial.last;
  for (const dl of dls) {
    if (!dl.proc) continue; // the trial's error says why
    if (dl.res.note || (!dl.res.bytesOk && !interrupted)) process.stderr.write(`  downloader ${dl.res.index} (${dl.res.addr}): ${dl.res.note ?? 'bytes differ'}\n${tailOf(dl.proc, 6)}\n`);
  }
  if (trial.error) process.stderr.write(`  error: ${trial.error}\n`);
}
