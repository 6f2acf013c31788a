/**
 * The BitTorrent contender of the flash crowd: a .torrent made by mktorrent, Debian's opentracker
 * as the tracker (it only serves info-hashes in its whitelist), an aria2c seeding the complete
 * file, and N aria2c leechers that keep seeding what they have (DHT and LPD off, PEX on). A leecher
 * is complete when aria2c runs its --on-bt-download-complete hook (every piece received and
 * SHA-1-checked); the file's size is no signal, since aria2c writes pieces where they belong.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureDir } from '../lib/files.js';
import { httpGetIn } from '../lib/probes.js';
import { tailOf } from '../lib/procs.js';
import { waitUntil } from '../lib/wait.js';
import { fill, NAME, type ContenderSide, type SideContext } from './common.js';

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
  /** hash-check the complete file once, then seed it */
  seeder: [...ARIA2_COMMON, '--check-integrity=true', '-d', '{seedDir}', '{torrent}'],
  leecher: [...ARIA2_COMMON, '--on-bt-download-complete={hook}', '-d', '{outDir}', '{torrent}'],
  /** -d: chroot; -w: the whitelist, a path INSIDE the chroot; drops root for nobody after chroot */
  opentracker: ['-i', '{addr}', '-p', '{port}', '-d', '{chroot}', '-u', 'nobody', '-w', '/whitelist.txt'],
  mktorrent: ['-a', 'http://{addr}:{port}/announce', '-l', '{pieceLog2}', '-n', '{name}', '-o', '{torrent}', '{file}'],
};
export const ARIA2_PORT = 6881;
export const OPENTRACKER_PORT = 6969;
export const BITTORRENT_TOOLS = ['aria2c', 'opentracker', 'mktorrent'];

/** The hook aria2c runs when a leecher has every piece ($3 = path of the file): stamp the time. */
const DONE_HOOK = `#!/bin/sh
# aria2c --on-bt-download-complete: $1 GID, $2 number of files, $3 path of the first file
date +%s.%N > "$3.flash-done"
`;

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

/** Make the torrent, the tracker's whitelist and the completion hook (once per run). */
export function bittorrentSide(ctx: SideContext): ContenderSide {
  const { lab, procs, opts, signal } = ctx;
  const hub = lab.hub;
  const seederPeer = lab.peers[0]!;
  const torrent = path.join(ctx.work, `${NAME}.torrent`);
  const chroot = ensureDir(path.join(ctx.work, 'opentracker'));
  const hook = path.join(ctx.work, 'done-hook.sh');
  const pieceLog2 = Math.log2(opts.pieceKiB * 1024);
  const mk = fill(ARIA2_COMMANDS.mktorrent, { addr: lab.hubAddr, port: OPENTRACKER_PORT, pieceLog2, name: NAME, torrent, file: ctx.source });
  const r = spawnSync('mktorrent', mk, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`mktorrent failed: ${r.stderr}`);
  const hash = torrentInfoHash(readFileSync(torrent));
  // opentracker chroots to `chroot` and then runs as nobody: both must be able to read
  chmodSync(chroot, 0o755);
  writeFileSync(path.join(chroot, 'whitelist.txt'), hash.toString('hex') + '\n', { mode: 0o644 });
  writeFileSync(hook, DONE_HOOK, { mode: 0o755 });
  ctx.note(`torrent: ${opts.pieceKiB} KiB pieces, info-hash ${hash.toString('hex')}`);
  const hashQuery = [...hash].map((b) => '%' + b.toString(16).padStart(2, '0')).join('');
  /** how many complete copies the tracker knows (null: no answer) */
  const scrape = async (): Promise<number | null> => {
    const body = await httpGetIn(lab.exec(hub), `http://${lab.hubAddr}:${OPENTRACKER_PORT}/scrape?info_hash=${hashQuery}`);
    if (!body) return null;
    const m = /8:completei(\d+)e/.exec(body.toString('latin1'));
    return m ? Number(m[1]) : 0;
  };
  const trackerArgs = fill(ARIA2_COMMANDS.opentracker, { addr: lab.hubAddr, port: OPENTRACKER_PORT, chroot });
  const base = { port: ARIA2_PORT, benchPid: process.pid, torrent };

  return {
    name: 'aria2c',
    commands: {
      mktorrent: ['mktorrent', ...mk],
      opentracker: ['opentracker', ...trackerArgs],
      aria2cSeeder: ['aria2c', ...fill(ARIA2_COMMANDS.seeder, { ...base, addr: seederPeer.addr, seedDir: '{seedDir}' })],
      aria2cLeecher: ['aria2c', ...fill(ARIA2_COMMANDS.leecher, { ...base, addr: '{addr}', hook, outDir: '{outDir}' })],
    },
    async startSeed(seedDir) {
      const tracker = procs.start('opentracker', [...lab.exec(hub), 'opentracker', ...trackerArgs]);
      if (!(await waitUntil(async () => !!tracker.exit || (await scrape()) !== null, { timeoutMs: 15_000, intervalMs: 200, signal })) || tracker.exit)
        throw new Error(`opentracker did not answer on ${lab.hubAddr}:${OPENTRACKER_PORT}\n${tailOf(tracker)}`);
      const seeder = procs.start('aria2c seeder', [...lab.exec(seederPeer.ns), 'aria2c', ...fill(ARIA2_COMMANDS.seeder, { ...base, addr: seederPeer.addr, seedDir })]);
      if (!(await waitUntil(async () => !!seeder.exit || ((await scrape()) ?? 0) >= 1, { timeoutMs: 30_000 + ctx.bytes / 20e3, intervalMs: 200, signal })) || seeder.exit)
        throw new Error(`the aria2c seeder never showed up as complete at the tracker\n${tailOf(seeder)}\n${tailOf(tracker)}`);
    },
    downloader: (p, outDir) => [...lab.exec(p.ns), 'aria2c', ...fill(ARIA2_COMMANDS.leecher, { ...base, addr: p.addr, hook, outDir })],
    doneFromLine: () => null,
    doneFromFiles(outDir) {
      const stampFile = path.join(outDir, NAME) + '.flash-done';
      const stamp = existsSync(stampFile) ? Number(readFileSync(stampFile, 'utf8').trim()) : NaN;
      return stamp > 0 ? stamp * 1000 : null;
    },
  };
}
