/** `swarm get NAME`: download one file from every peer that has it, with live bars. */
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { get, defaultTracker, formatBreakdown, SwarmError, ERROR_CODES, type DoneEvent, type PeerView } from '../../lib/index.js';
import { humanBytes, humanRate, ndjson, printable } from '../format.js';
import { collect, intOption } from './common.js';

interface GetCliOptions {
  tracker?: string;
  peer?: string[];
  version?: string;
  overwrite?: boolean;
  output: string;
  threads?: number;
  peerThreads?: number;
  maxMemory: number;
  json?: boolean;
  quiet?: boolean;
  profile?: boolean;
}

const PROGRESS_JSON_MS = 1000;

export function register(program: Command): void {
  // `swarm get NAME --version CID`: without positional options commander takes `--version` after
  // the subcommand as the program's own (prints swarm's version, exit 0, nothing fetched).
  // Program options (-V, --version, -h) are then recognised only before the subcommand.
  program.enablePositionalOptions();
  program
    .command('get')
    .description('download NAME from every peer that has it, in parallel chunks')
    .argument('<name>', 'file name in the swarm (relative path, e.g. isos/big file.iso)')
    .option('-t, --tracker <host:port>', `tracker to ask (default: $SWARM_TRACKER, else the local one, ${defaultTracker()})`)
    .option('--peer <host:port>', 'fetch from this peer (repeatable); skips the tracker', collect)
    .option('--version <cid>', 'fetch this version (a content id from swarm who, or its first 8+ hex digits) instead of the newest')
    .option('-o, --output <dir>', 'folder to save into (NAME\'s subfolders are created)', '.')
    .option('--overwrite', 'replace a different file already at NAME (default: leave it alone and stop)')
    .option('--threads <n>', 'hash+write threads (0: main thread)', intOption)
    .option('--peer-threads <n>', 'connection threads (0: main thread; default one per core)', intOption)
    .option('--max-memory <MiB>', 'chunk bytes in flight, in MiB', intOption, 48)
    .option('--profile', 'measure where the time goes and print a breakdown at the end')
    .option('--json', 'print NDJSON events (start, progress, warning, peer-dropped, done, error)')
    .option('-q, --quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      `
The file is assembled in NAME.swarm-part with a NAME.swarm-ticket beside it, and appears under
NAME only when every chunk matched its BLAKE3 hash. Ctrl-C (or a lost swarm) keeps both: run the
same command again to resume. A different file already at NAME is never replaced without
--overwrite; two downloads of one target cannot run at once (NAME.swarm-lock).
Exit codes: see README ("Exit codes").`,
    )
    .action(async (name: string, o: GetCliOptions) => {
      const p = get(name, {
        ...(o.tracker ? { tracker: o.tracker } : {}),
        ...(o.peer ? { peers: o.peer } : {}),
        ...(o.version ? { version: o.version } : {}),
        ...(o.overwrite ? { overwrite: true } : {}),
        outDir: o.output,
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
        ...(o.peerThreads !== undefined ? { peerThreads: o.peerThreads } : {}),
        budgetBytes: Math.max(1, o.maxMemory) << 20,
        ...(o.profile ? { profile: true } : {}),
      });
      const d = p.download;
      const onSignal = () => d.abort(new SwarmError(ERROR_CODES.INTERRUPTED, `interrupted; ${name}.swarm-part and its ticket are kept: run the same command again to resume`));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const view = o.json ? jsonView(d) : o.quiet ? null : barView(d);
      try {
        const r = await p;
        view?.done(r);
        if (r.breakdown && !o.json) process.stderr.write(formatBreakdown(r.breakdown) + '\n');
      } catch (err) {
        view?.stop();
        throw err;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

interface View {
  done(r: DoneEvent): void;
  stop(): void;
}

function jsonView(d: ReturnType<typeof get>['download']): View {
  let last = 0;
  d.on('start', (e) => ndjson({ event: 'start', ...e }));
  d.on('progress', (e) => {
    const now = Date.now();
    if (now - last < PROGRESS_JSON_MS) return;
    last = now;
    ndjson({ event: 'progress', ...e, rate: Math.round(e.rate), peers: e.peers.map((p) => ({ ...p, rate: Math.round(p.rate) })) });
  });
  d.on('warning', (e) => ndjson({ event: 'warning', ...e }));
  d.on('peer-dropped', (e) => ndjson({ event: 'peer-dropped', ...e }));
  return { done: (r) => ndjson({ event: 'done', ...r }), stop: () => {} };
}

function peerLine(p: PeerView): string {
  const state = p.state === 'active' ? (p.inflight > 0 ? 'fetching' : 'idle') : p.state;
  return `${humanRate(p.rate).padStart(12)}  ${String(p.chunks).padStart(6)} chunks  ${state}${p.strikes ? `  ${p.strikes} strikes` : ''}`;
}

function barView(d: ReturnType<typeof get>['download']): View {
  const tty = !!process.stderr.isTTY;
  let multi: cliProgress.MultiBar | null = null;
  let total: cliProgress.SingleBar | null = null;
  const peerBars = new Map<string, cliProgress.SingleBar>();
  const log = (s: string) => (multi ? multi.log(s + '\n') : process.stderr.write(s + '\n'));
  d.on('start', (e) => {
    const resumed = e.resumedChunks ? `, resuming with ${e.resumedChunks}/${e.chunks} chunks` : '';
    process.stderr.write(`${printable(e.name)}: ${humanBytes(e.size)} from ${e.peers.length} peer(s) via ${e.source}${resumed}\n`);
    if (!tty) return;
    multi = new cliProgress.MultiBar(
      { stream: process.stderr, hideCursor: true, clearOnComplete: false, format: '{label} |{bar}| {percentage}% {value}/{total} MiB {rate} ETA {eta_formatted}', barsize: 30 },
      cliProgress.Presets.shades_classic,
    );
    total = multi.create(Math.max(1, Math.ceil(e.size / 2 ** 20)), Math.floor((e.resumedChunks * e.chunkBytes) / 2 ** 20), { label: 'total'.padEnd(21), rate: '' });
    for (const peer of e.peers) {
      peerBars.set(peer, multi.create(1, 0, { label: `  ${peer}`.padEnd(21), line: '' }, { format: '{label} {line}' }));
    }
  });
  d.on('progress', (e) => {
    total?.update(Math.floor(e.bytes / 2 ** 20), { rate: humanRate(e.rate) });
    for (const p of e.peers) peerBars.get(p.address)?.update(0, { line: peerLine(p) });
  });
  d.on('warning', (e) => log(`warning: ${e.peer ? e.peer + ': ' : ''}${printable(e.message)}`));
  d.on('peer-dropped', (e) => log(`dropped ${e.peer}: ${printable(e.reason)}`));
  const stop = () => {
    (multi as cliProgress.MultiBar | null)?.stop();
    multi = null;
  };
  return {
    done(r) {
      const t = total as cliProgress.SingleBar | null;
      t?.update(t.getTotal(), { rate: '' }); // the last tick may predate the last chunk
      stop();
      if (r.upToDate) {
        process.stderr.write(`${printable(r.path)} is already up to date\n`);
        return;
      }
      process.stderr.write(
        `saved ${printable(r.path)}: ${humanBytes(r.size)} in ${r.seconds.toFixed(1)} s (${humanRate(r.rate)}), ${r.peersUsed} peer(s) used` +
          `${r.resumedChunks ? `, ${r.resumedChunks} chunks resumed` : ''}` +
          `${r.peersDropped ? `, ${r.peersDropped} dropped` : ''}` +
          `${r.badPackets || r.badChunks ? `, bad data dropped: ${r.badPackets} packets, ${r.badChunks} chunks` : ''}\n`,
      );
    },
    stop,
  };
}
