/**
 * `swarm get NAME`: download one file from every peer that has it, with live bars, and share what
 * it has while it runs (a swarm peer: the tracker lists it as a partial holder). `--seed` keeps
 * sharing the finished file; `--no-share` only takes.
 */
import type { Command } from 'commander';
import type { SwarmNode, GetOptions } from '../../lib/index.js';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { defaultTracker } from '../../lib/constants.js';
import { ndjson } from '../format.js';
import { addressOption, boundedInt, checkOutputFolder, cidOption, listenHostOption, outDirOption, peerList, portOption, seedOption, threadsOption } from '../options.js';
import { addressText, resolvePeerAddresses } from './common.js';
import { barView, jsonView } from '../views/get-view.js';
import { addDiscoveryOptions, discoveryNodeOptions, type DiscoveryCliOptions } from './discovery-options.js';

interface GetCliOptions extends DiscoveryCliOptions {
  tracker?: string | boolean;
  peer?: string[];
  version?: string;
  overwrite?: boolean;
  output: string;
  host: string;
  port: number;
  share: boolean;
  seed?: number | true;
  threads?: number;
  peerThreads?: number;
  maxMemory: number;
  giveUp: number;
  json?: boolean;
  quiet?: boolean;
  profile?: boolean;
}

export function register(program: Command): void {
  // `swarm get NAME --version CID`: without positional options commander takes `--version` after
  // the subcommand as the program's own (prints swarm's version, exit 0, nothing fetched).
  // Program options (-V, --version, -h) are then recognised only before the subcommand.
  program.enablePositionalOptions();
  const cmd = program
    .command('get')
    .description('download NAME from every peer that has it, in parallel chunks, sharing what it has')
    .argument('<name>', 'file name in the swarm (relative path, e.g. isos/big file.iso)')
    .option('-t, --tracker <host:port>', `tracker to ask (default: $SWARM_TRACKER, else the local one, ${defaultTracker()})`, addressOption)
    .option('--no-tracker', 'ask no tracker: holders come from --peer, --neighbor or --lan')
    .option('--peer <host:port>', 'fetch from this peer (repeatable); skips the tracker unless -t is given', peerList);
  addDiscoveryOptions(cmd)
    .option('--version <cid>', 'fetch this version (a content id from swarm who, or its first 8+ hex digits; legacy:MTIME for the version only stock peers of the older protocol hold) instead of the newest', cidOption)
    .option('-o, --output <dir>', 'folder to save into (NAME\'s subfolders are created)', outDirOption, '.')
    .option('--overwrite', 'replace a different file already at NAME (default: leave it alone and stop)')
    .option('--host <addr>', 'address to share on while downloading (0.0.0.0: your LAN)', listenHostOption, '127.0.0.1')
    .option('-p, --port <port>', 'port to share on (0: any free port)', portOption, 0)
    .option('--no-share', 'only take: do not serve the chunks already fetched to other peers')
    .option('--seed [seconds]', 'after the download, keep sharing the file (until Ctrl-C, or for SECONDS)', seedOption)
    .option('--threads <n>', 'hash+write threads, 0 to 256 (0: main thread; default: 0 on 1-2 cores, else one per core)', threadsOption)
    .option('--peer-threads <n>', 'connection threads, 0 to 256 (0: main thread; default: 0 on 1-2 cores, else half the cores)', threadsOption)
    .option('--max-memory <MiB>', 'chunk bytes in flight, in MiB (1 to 65536)', boundedInt(1, 65536, ' MiB'), 48)
    .option('--give-up <limit>', 'fail (exit 4) when no chunk has been verified for LIMIT seconds, whatever the peers say (0: never)', boundedInt(0, 31_536_000, ' s'), 120)
    .option('--profile', 'measure where the time goes and print a breakdown at the end')
    .option('--json', 'print NDJSON events (start, progress, warning, peer-dropped, done, seeding, stopped, error)')
    .option('-q, --quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      `
The file is assembled in NAME.swarm-part with a NAME.swarm-ticket beside it, and appears under
NAME only when every chunk matched its BLAKE3 hash. Ctrl-C (or a lost swarm) keeps both: run the
same command again to resume. A different file already at NAME is never replaced without
--overwrite; two downloads of one target cannot run at once (NAME.swarm-lock).
While it runs, get serves the chunks it has verified (on --host/--port) and the tracker lists it
as a partial holder, so a crowd of downloaders feeds itself. Exit codes: see README.`,
    )
    .action(async (name: string, o: GetCliOptions) => {
      const tracker = typeof o.tracker === 'string' ? o.tracker : undefined;
      const discovery = discoveryNodeOptions(o);
      // what the user typed is checked before any peer is asked: a swarm that answers slowly (or
      // not at all) must not hide a folder that can never be written, or a command with no source
      if (o.tracker === false && !o.peer?.length && !discovery.neighbors && !discovery.lan) {
        throw new SwarmError(ERROR_CODES.USAGE, `nowhere to look for ${name}: --no-tracker needs --peer, --neighbor or --lan`);
      }
      checkOutputFolder(o.output);
      if (o.peer) o.peer = (await resolvePeerAddresses(o.peer, '--peer')).map(addressText);
      const { SwarmNode, formatBreakdown, defaultLayout } = await import('../../lib/index.js');
      const layout = defaultLayout();
      const named = !!o.peer?.length;
      const node = await SwarmNode.start({
        listen: o.share,
        host: o.host,
        port: o.port,
        ...(tracker ? { tracker } : {}),
        // with named peers only, no tracker is asked (nor told about us)
        noTracker: o.tracker === false || (named && !tracker),
        embed: false,
        threads: o.threads ?? layout.poolThreads,
        ...discovery,
      });
      const opts: GetOptions = {
        ...(tracker ? { tracker } : {}),
        ...(o.tracker === false ? { noTracker: true } : {}),
        ...(o.peer ? { peers: o.peer } : {}),
        ...(o.version ? { version: o.version } : {}),
        ...(o.overwrite ? { overwrite: true } : {}),
        outDir: o.output,
        peerThreads: o.peerThreads ?? layout.peerThreads,
        budgetBytes: o.maxMemory * 2 ** 20,
        giveUpMs: o.giveUp * 1000,
        ...(o.profile ? { profile: true } : {}),
      };
      const p = node.get(name, opts);
      const d = p.download;
      // the part file exists only once the download started; before that, nothing is kept
      let started = false;
      d.once('start', () => (started = true));
      // a signal that comes as the file lands (too late to abort) still means: do not seed
      let signalled = false;
      const onSignal = () => {
        signalled = true;
        d.abort(new SwarmError(ERROR_CODES.INTERRUPTED, started ? `interrupted; ${name}.swarm-part and its ticket are kept: run the same command again to resume` : `interrupted while looking for holders of ${name}; nothing was written`));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const upload = o.share ? { stats: () => node.uploadStats() } : null;
      const view = o.json ? jsonView(d, upload) : o.quiet ? null : await barView(d, upload);
      try {
        const r = await p;
        view?.done(r, node.uploadStats().bytes);
        // a stock seed-002 holder has no hashes: the summary says what was (not) checked
        if (!o.json && !o.quiet && !r.upToDate && r.verified) {
          process.stderr.write(r.verified === 'size' ? 'fetched from a stock seed-002 peer: checked against the size only (it publishes no hashes)\n' : 'fetched from a stock seed-002 peer: not checked (it publishes no hashes and the directory gives no size)\n');
        }
        if (r.breakdown && !o.json) {
          const used = o.threads !== undefined || o.peerThreads !== undefined ? 'set by --threads/--peer-threads' : layout.why;
          process.stderr.write(`${formatBreakdown(r.breakdown)}\nlayout: ${r.breakdown.threads.peer} peer thread(s), ${r.breakdown.threads.pool} pool thread(s) (${used})\n`);
        }
      } catch (err) {
        view?.stop();
        await node.close({ graceful: false });
        throw err;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      // Ctrl-C (or SIGTERM) while seeding stops now: the peers fetching from us go on from others
      const how = signalled ? 'signal' : o.seed !== undefined ? await seed(node, o, name) : 'done';
      await node.close(how === 'signal' ? { graceful: false } : { graceful: true, waitMs: 2_000 });
    });
}

/** Keep sharing after the download: until Ctrl-C, or for the given seconds. Says which ended it. */
async function seed(node: SwarmNode, o: GetCliOptions, name: string): Promise<'signal' | 'timer'> {
  const secs = o.seed === true ? null : o.seed!;
  const say = (text: string, event: Record<string, unknown>) => (o.json ? ndjson(event) : o.quiet ? undefined : process.stderr.write(text + '\n'));
  say(`seeding ${name} on ${node.host}:${node.port}${secs === null ? ' until Ctrl-C' : ` for ${secs} s`}`, { event: 'seeding', name, host: node.host, port: node.port, seconds: secs });
  const how = await new Promise<'signal' | 'timer'>((resolve) => {
    const timer = secs === null ? null : setTimeout(() => done('timer'), secs * 1000);
    const onSignal = () => done('signal');
    function done(why: 'signal' | 'timer') {
      if (timer) clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(why);
    }
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  const up = node.uploadStats();
  say(`stopped seeding; ${up.bytes} bytes uploaded in all`, { event: 'stopped', uploaded: up.bytes });
  return how;
}
