/** `swarm serve DIR`: share a folder (and embed or join a tracker). */
import type { Command } from 'commander';
import type { SingleBar } from 'cli-progress';
import type { ServeHandle, HashProgress } from '../../lib/index.js';
import * as constants from '../../lib/constants.js';
import { count, humanBytes, ndjson, printable } from '../format.js';
import { addPeerOptions, addressText, onInterrupt, peerNodeOptions, resolvePeerAddresses, type PeerCliOptions } from './common.js';
import { sayTrackerChanges, trackerText } from '../views/tracker-view.js';
import { addDiscoveryOptions, discoveryNodeOptions, type DiscoveryCliOptions } from './discovery-options.js';

export function register(program: Command): void {
  const cmd = program
    .command('serve')
    .description('share a folder: scan and hash it, answer peers, register with a tracker')
    .argument('<dir>', 'folder to share (subfolders included)');
  addPeerOptions(cmd, { port: 'peer port (0 picks a free one)', defaultPort: constants.DEFAULT_PEER_PORT, tracker: 'register with this tracker (default: embed one, or join the one already running here)' }).option('--json', 'print NDJSON events instead of text');
  addDiscoveryOptions(cmd)
    .addHelpText(
      'after',
      `
Ctrl-C stops accepting peers and lets running transfers finish; a second Ctrl-C ends at once.
Manifests are cached in DIR/.swarm so a restart re-hashes only changed files.`,
    )
    .action(async (dir: string, o: DiscoveryCliOptions & PeerCliOptions & { json?: boolean }) => {
      const discovery = discoveryNodeOptions(o);
      // looked up here (as the node would) so that --json lists each neighbour by its IP, never a name
      const neighbors = discovery.neighbors ? await resolvePeerAddresses(discovery.neighbors, '--neighbor') : [];
      if (discovery.neighbors) discovery.neighbors = neighbors.map(addressText);
      const { serve, openLogFile } = await import('../../lib/index.js');
      // bars only on a terminal, for large shares: the bars library is loaded only then
      const cliProgress = !o.json && process.stderr.isTTY ? (await import('cli-progress')).default : null;
      const fileLog = o.log ? openLogFile(o.log) : null;
      const json = !!o.json;
      const say = (text: string, event: Record<string, unknown>) => (json ? ndjson(event) : process.stderr.write(text + '\n'));
      let bar: SingleBar | null = null;
      let lastJson = 0;
      const onHashing = (p: HashProgress) => {
        const finished = p.filesDone === p.filesTotal;
        if (json) {
          // a modest rate for scripts: once a second, and when a batch of files is done
          if (finished || Date.now() - lastJson >= 1000) {
            lastJson = Date.now();
            ndjson({ event: 'hashing', ...p });
          }
          return;
        }
        if (!cliProgress || p.bytesTotal < 64 << 20) return;
        if (!bar) {
          bar = new cliProgress.SingleBar({ format: 'hashing |{bar}| {percentage}% {value}/{total} MiB  {files}', stream: process.stderr }, cliProgress.Presets.shades_classic);
          bar.start(Math.ceil(p.bytesTotal / 2 ** 20), 0, { files: '' });
        }
        bar.update(finished ? bar.getTotal() : Math.floor(p.bytesDone / 2 ** 20), { files: `${p.filesDone}/${p.filesTotal} files` });
        if (finished) {
          bar.stop();
          bar = null;
        }
      };
      const startedHashing = Date.now();
      const handle: ServeHandle = await serve(dir, {
        ...peerNodeOptions(o),
        ...(fileLog ? { log: fileLog.log, ignore: [o.log!] } : {}),
        ...discovery,
        onHashing,
        onWarning: (m, info) => say(`warning: ${printable(m)}`, { event: 'warning', message: m, ...info }),
      }).catch(async (err) => {
        await fileLog?.close();
        throw err;
      });
      handle.on('change', (d) => say(`share changed: +${d.added.length} ~${d.changed.length} -${d.removed.length}`, { event: 'change', ...d }));
      // a tracker that stays unreachable is said once (and when it comes back), not at every retry
      sayTrackerChanges(handle, say);
      const files = handle.library.files();
      const total = files.reduce((a, f) => a + f.size, 0);
      const trackerLine = trackerText(handle);
      const named = handle.book.list().filter((k) => k.sources.includes('neighbor')).length;
      const overlayText = `${named ? `; overlay: ${count(named, 'neighbour')}` : ''}${handle.lan ? `; LAN announcements on UDP ${handle.lan.port}` : ''}`;
      say(`sharing ${count(files.length, 'file')} (${humanBytes(total)}) from ${handle.library.root} on ${handle.host}:${handle.port}; ${trackerLine}${overlayText}; hashed ${count(handle.library.counters.filesHashed, 'file')} in ${((Date.now() - startedHashing) / 1000).toFixed(1)} s`, {
        event: 'serving',
        dir: handle.library.root,
        host: handle.host,
        port: handle.port,
        files: files.length,
        bytes: total,
        tracker: handle.tracker?.address ?? null,
        embeddedTracker: !!handle.tracker?.embedded,
        trackerConnected: !!handle.tracker?.client.connected,
        neighbors,
        lan: handle.lan ? { port: handle.lan.port } : null,
      });
      if (!json) for (const f of files.slice(0, 20)) process.stderr.write(`  ${f.name}  ${humanBytes(f.size)}\n`);
      if (!json && files.length > 20) process.stderr.write(`  ... and ${files.length - 20} more (swarm ls ${dir})\n`);
      await onInterrupt(
        async () => {
          say('stopping: no new peers; waiting for running transfers (Ctrl-C again to quit now)', { event: 'stopping' });
          await handle.close({ graceful: true });
        },
        async () => {
          await handle.close({ graceful: false });
        },
      );
      await fileLog?.close();
      say('stopped', { event: 'stopped' });
    });
}
