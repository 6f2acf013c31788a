/**
 * The swarm contender of the flash crowd: a `swarm tracker`, a `swarm serve` seeder and N
 * `swarm get` downloaders, from the command lines below (placeholders in braces are filled per
 * process). When `swarm get --help` lacks an option the downloader line uses (--host, --seed: the
 * CLI is gaining them), a plain get that does not share what it has is run, and said so. A
 * downloader is complete when NAME appears at full size (swarm renames its part file only when
 * every chunk matched its hash), polled, or at its `done` event, whichever is first.
 *
 *   {addr} this peer's address   {port} its listening port   {tracker} host:port of the tracker
 *   {name} the file's name       {seedDir} the seeder's folder {outDir} the downloader's folder
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { runBounded, tailOf } from '../lib/procs.js';
import { waitUntil } from '../lib/wait.js';
import { fill, NAME, nowMs, type ContenderSide, type SideContext } from './common.js';

export const SWARM_COMMANDS = {
  tracker: ['tracker', '--host', '{addr}', '--port', '{port}', '--json'],
  seeder: ['serve', '{seedDir}', '--host', '{addr}', '--port', '{port}', '--tracker', '{tracker}', '--json'],
  /** downloaders that also serve what they have */
  downloader: ['get', '{name}', '-o', '{outDir}', '--tracker', '{tracker}', '--host', '{addr}', '--json', '--seed'],
  /** used when `swarm get --help` lacks an option of `downloader`: a plain get that does not share */
  downloaderFallback: ['get', '{name}', '-o', '{outDir}', '--tracker', '{tracker}', '--json'],
};
export const SWARM_TRACKER_PORT = 7077;
export const SWARM_PEER_PORT = 7070;

export function swarmSide(ctx: SideContext): ContenderSide {
  const { lab, procs, opts, signal } = ctx;
  const hub = lab.hub;
  const seederPeer = lab.peers[0]!;
  const tracker = `${lab.hubAddr}:${SWARM_TRACKER_PORT}`;
  let getArgs = opts.swarmGetArgs ?? SWARM_COMMANDS.downloader;
  if (!opts.swarmGetArgs) {
    const help = spawnSync(process.execPath, [opts.swarmBin, 'get', '--help'], { encoding: 'utf8', timeout: 30_000 }).stdout ?? '';
    const missing = SWARM_COMMANDS.downloader.filter((a) => a.startsWith('--') && !help.includes(a.split('=')[0]!));
    if (missing.length) {
      getArgs = SWARM_COMMANDS.downloaderFallback;
      ctx.note(`swarm get has no ${missing.join(', ')} yet: downloaders run "${getArgs.join(' ')}" (they do not share what they have)`);
    }
  }
  const serveArgs = opts.swarmServeArgs ?? SWARM_COMMANDS.seeder;
  const trackerArgs = opts.swarmTrackerArgs ?? SWARM_COMMANDS.tracker;
  const swarm = (ns: string, args: string[]) => [...lab.exec(ns), process.execPath, opts.swarmBin, ...args];
  /** `who` exits 3 (not found) once the tracker answers, 0 once a holder registered */
  const who = async () => (await runBounded(swarm(hub, ['who', NAME, '--tracker', tracker, '--json']), 10_000)).code;

  return {
    name: 'swarm',
    commands: { swarmTracker: ['swarm', ...trackerArgs], swarmSeeder: ['swarm', ...serveArgs], swarmDownloader: ['swarm', ...getArgs] },
    async startSeed(seedDir) {
      const t = procs.start('swarm tracker', swarm(hub, fill(trackerArgs, { addr: lab.hubAddr, port: SWARM_TRACKER_PORT })));
      if (!(await waitUntil(async () => !!t.exit || [0, 3].includes((await who()) ?? -1), { timeoutMs: 20_000, intervalMs: 200, signal })) || t.exit)
        throw new Error(`swarm tracker did not answer on ${tracker}\n${tailOf(t)}`);
      const s = procs.start('swarm seeder', swarm(seederPeer.ns, fill(serveArgs, { addr: seederPeer.addr, port: SWARM_PEER_PORT, seedDir, tracker, name: NAME })));
      if (!(await waitUntil(async () => !!s.exit || (await who()) === 0, { timeoutMs: 30_000 + ctx.bytes / 20e3, intervalMs: 250, signal })) || s.exit)
        throw new Error(`the swarm seeder never registered ${NAME} with the tracker\n${tailOf(s)}`);
    },
    downloader: (p, outDir) => swarm(p.ns, fill(getArgs, { addr: p.addr, port: SWARM_PEER_PORT, name: NAME, outDir, tracker })),
    doneFromLine: (line, atMs) => (line.includes('"event":"done"') ? atMs : null),
    doneFromFiles: (outDir) => (statSync(path.join(outDir, NAME), { throwIfNoEntry: false })?.size === ctx.bytes ? nowMs() : null),
  };
}
