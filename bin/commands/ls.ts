/** `swarm ls`: files in a local folder, on a peer, or in a tracker's directory; `swarm who`: the holders of one name. */
import type { Command } from 'commander';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { defaultTracker, trackerNamed } from '../../lib/constants.js';
import { humanBytes, humanTime, printTable, printable } from '../format.js';
import { addressOption } from '../options.js';
import { addDiscoveryOptions, discoveryNodeOptions, type DiscoveryCliOptions } from './discovery-options.js';
import type { Version } from '../../lib/index.js';
import { addressText } from '../../lib/types.js';

const addr = addressText;

/** A file as --json lists it: the same fields in the same order everywhere; cid null when not hashed yet. */
const fileJson = (f: { name: string; kind: string; size: number; mtime: number; cid?: string }) => ({ name: f.name, kind: f.kind, size: f.size, mtime: f.mtime, cid: f.cid ?? null });
/** A peer in a --json list: only its address (whatever else the library carries stays out). */
const peerJson = (h: { ip: string; port: number }) => ({ ip: h.ip, port: h.port });

function warnDropped(dropped: { what: string; reason: string }[], from: string, json: boolean): void {
  if (dropped.length === 0 || json) return;
  process.stderr.write(`warning: ${dropped.length} entr${dropped.length === 1 ? 'y' : 'ies'} from ${from} left out as invalid (first: ${printable(dropped[0]!.what)}: ${dropped[0]!.reason})\n`);
}

export function register(program: Command): void {
  program
    .command('ls')
    .description('list files: in a folder, on a peer (--peer), or in the swarm (--tracker)')
    .argument('[dir]', 'local folder to list')
    .option('--peer <host:port>', 'list what this peer shares', addressOption)
    .option('-t, --tracker [host:port]', `list the tracker's directory (name, size, mtime, holders; default $SWARM_TRACKER, else ${defaultTracker()})`, addressOption)
    .option('--json', 'print JSON')
    .action(async (dir: string | undefined, o: { peer?: string; tracker?: string | true; json?: boolean }) => {
      const { listLocal, listPeer, trackerDirectory } = await import('../../lib/index.js');
      const modes = [dir !== undefined, !!o.peer, !!o.tracker].filter(Boolean).length;
      if (modes !== 1) throw new SwarmError(ERROR_CODES.USAGE, 'give exactly one of: a folder, --peer host:port, --tracker [host:port]');
      if (o.tracker) {
        const tracker = defaultTracker(typeof o.tracker === 'string' ? o.tracker : undefined);
        const { entries, dropped } = await trackerDirectory(tracker);
        warnDropped(dropped, `tracker ${tracker}`, !!o.json);
        if (o.json) return void process.stdout.write(JSON.stringify(entries.map(([name, e]) => ({ name, cid: e.cid, size: e.size, mtime: e.mtime, versionCount: e.versions, holders: e.holders.map(peerJson), partial: e.partial.map(peerJson) }))) + '\n');
        if (entries.length === 0) return void process.stdout.write('the directory is empty\n');
        printTable(
          ['NAME', 'SIZE', 'MODIFIED (UTC)', 'VERSIONS', 'HOLDERS'],
          entries.map(([n, e]) => [
            printable(n),
            humanBytes(e.size),
            humanTime(e.mtime),
            String(e.versions),
            [...e.holders.map(addr), ...e.partial.map((h) => `${addr(h)}(partial)`)].join(' '),
          ]),
          [1, 3],
        );
        return;
      }
      if (o.peer) {
        const { files, dropped } = await listPeer(o.peer);
        warnDropped(dropped, `peer ${o.peer}`, !!o.json);
        if (o.json) return void process.stdout.write(JSON.stringify(files.map(fileJson)) + '\n');
        if (files.length === 0) return void process.stdout.write('no files\n');
        printTable(['KIND', 'NAME', 'SIZE', 'MODIFIED (UTC)'], files.map((f) => [f.kind, printable(f.name), humanBytes(f.size), humanTime(f.mtime)]), [2]);
        return;
      }
      const files = await listLocal(dir!);
      if (o.json) return void process.stdout.write(JSON.stringify(files.map(fileJson)) + '\n');
      if (files.length === 0) return void process.stdout.write('no files\n');
      printTable(['KIND', 'NAME', 'SIZE', 'MODIFIED (UTC)'], files.map((f) => [f.kind, printable(f.name), humanBytes(f.size), humanTime(f.mtime)]), [2]);
    });

  addDiscoveryOptions(
    program
      .command('who')
      .description('which peers hold NAME, for every version known (newest first): tracker, overlay, LAN')
      .argument('<name>', 'file name as the swarm knows it (relative path)')
      .option('-t, --tracker <host:port>', `tracker to ask (default: $SWARM_TRACKER, else ${defaultTracker()})`, addressOption)
      .option('--no-tracker', 'ask no tracker (only --neighbor / --lan)'),
  )
    .option('--json', 'print JSON')
    .action(async (typed: string, o: DiscoveryCliOptions & { tracker?: string | boolean; json?: boolean }) => {
      const disc = discoveryNodeOptions(o);
      const { trackerVersions, mergeVersions, SwarmNode } = await import('../../lib/index.js');
      // `./name` (what tab completion gives) is the name; any other name is asked as typed (one
      // nobody can share is simply not found)
      let name = typed;
      while (name.startsWith('./')) name = name.slice(2).replace(/^\/+/, '');
      // an empty name is a usage error, as search's empty pattern (it was "no peer holds" it, exit 3)
      if (name.trim() === '') throw new SwarmError(ERROR_CODES.USAGE, 'who needs a file name (e.g. swarm who isos/big.iso)');
      const tracker = o.tracker === false ? null : defaultTracker(typeof o.tracker === 'string' ? o.tracker : undefined);
      const overlay = !!(disc.neighbors || disc.lan);
      if (!tracker && !overlay) throw new SwarmError(ERROR_CODES.USAGE, 'nowhere to ask: --no-tracker needs --neighbor or --lan');
      const lists: Version[][] = [];
      const failures: Error[] = [];
      const asks: Promise<void>[] = [];
      if (tracker) {
        asks.push(
          trackerVersions(tracker, name).then(
            ({ versions, dropped }) => {
              warnDropped(dropped, `tracker ${tracker}`, !!o.json);
              lists.push(versions);
            },
            (err: Error) => void failures.push(err),
          ),
        );
      }
      if (overlay) {
        asks.push(
          (async () => {
            const node = await SwarmNode.start({ listen: false, noTracker: true, embed: false, threads: 0, ...disc });
            try {
              for (const f of node.finders()) lists.push(await f.versions(name));
            } finally {
              await node.close({ graceful: false });
            }
          })().catch((err: Error) => void failures.push(err)),
        );
      }
      await Promise.all(asks);
      if (lists.length === 0) throw failures[0]!;
      const quiet = overlay && !trackerNamed(typeof o.tracker === 'string' ? o.tracker : undefined);
      for (const f of failures) if (!o.json && !(quiet && (f as SwarmError).code === ERROR_CODES.TRACKER_UNREACHABLE)) process.stderr.write(`warning: ${printable(f.message)}\n`);
      const versions = mergeVersions(lists);
      if (versions.length === 0) throw new SwarmError(ERROR_CODES.NOT_FOUND, `no peer holds ${name}`);
      if (o.json) return void process.stdout.write(JSON.stringify({ name, versions: versions.map((v) => ({ cid: v.cid, size: v.size, mtime: v.mtime, holders: v.holders.map(peerJson), partial: v.partial.map(peerJson) })) }) + '\n');
      versions.forEach((v, i) => {
        process.stdout.write(`${i === 0 ? 'newest' : 'older '}  ${v.cid}  ${humanBytes(v.size)}  modified ${humanTime(v.mtime)} UTC\n`);
        for (const h of v.holders) process.stdout.write(`          ${addr(h)}\n`);
        for (const h of v.partial) process.stdout.write(`          ${addr(h)} (partial)\n`);
      });
      if (versions.length > 1) process.stdout.write(`fetch an older version with: swarm get ${printable(JSON.stringify(name))} --version CID\n`);
    });
}
