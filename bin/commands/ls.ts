/** `swarm ls`: files in a local folder, on a peer, or in a tracker's directory; `swarm who`: the holders of one name. */
import type { Command } from 'commander';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { defaultTracker } from '../../lib/constants.js';
import { humanBytes, humanTime, printTable, printable } from '../format.js';

const addr = (h: { ip: string; port: number }) => (h.ip.includes(':') ? `[${h.ip}]:${h.port}` : `${h.ip}:${h.port}`);

function warnDropped(dropped: { what: string; reason: string }[], from: string, json: boolean): void {
  if (dropped.length === 0 || json) return;
  process.stderr.write(`warning: ${dropped.length} entr${dropped.length === 1 ? 'y' : 'ies'} from ${from} left out as invalid (first: ${printable(dropped[0]!.what)}: ${dropped[0]!.reason})\n`);
}

export function register(program: Command): void {
  program
    .command('ls')
    .description('list files: in a folder, on a peer (--peer), or in the swarm (--tracker)')
    .argument('[dir]', 'local folder to list')
    .option('--peer <host:port>', 'list what this peer shares')
    .option('-t, --tracker [host:port]', `list the tracker's directory (name, size, mtime, holders; default ${defaultTracker()})`)
    .option('--json', 'print JSON')
    .action(async (dir: string | undefined, o: { peer?: string; tracker?: string | true; json?: boolean }) => {
      const { listLocal, listPeer, trackerDirectory } = await import('../../lib/index.js');
      const modes = [dir !== undefined, !!o.peer, !!o.tracker].filter(Boolean).length;
      if (modes !== 1) throw new SwarmError(ERROR_CODES.USAGE, 'give exactly one of: a folder, --peer host:port, --tracker [host:port]');
      if (o.tracker) {
        const tracker = defaultTracker(typeof o.tracker === 'string' ? o.tracker : undefined);
        const { entries, dropped } = await trackerDirectory(tracker);
        warnDropped(dropped, `tracker ${tracker}`, !!o.json);
        if (o.json) return void process.stdout.write(JSON.stringify(entries.map(([name, e]) => ({ name, ...e }))) + '\n');
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
        if (o.json) return void process.stdout.write(JSON.stringify(files) + '\n');
        if (files.length === 0) return void process.stdout.write('no files\n');
        printTable(['TYPE', 'NAME', 'SIZE', 'MODIFIED (UTC)'], files.map((f) => [f.kind, printable(f.name), humanBytes(f.size), humanTime(f.mtime)]), [2]);
        return;
      }
      const files = await listLocal(dir!);
      if (o.json) return void process.stdout.write(JSON.stringify(files) + '\n');
      if (files.length === 0) return void process.stdout.write('no files\n');
      printTable(['TYPE', 'NAME', 'SIZE', 'MODIFIED (UTC)'], files.map((f) => [f.kind, printable(f.name), humanBytes(f.size), humanTime(f.mtime)]), [2]);
    });

  program
    .command('who')
    .description('which peers hold NAME, for every version the tracker knows (newest first)')
    .argument('<name>', 'file name as the swarm knows it (relative path)')
    .option('-t, --tracker <host:port>', `tracker to ask (default ${defaultTracker()})`)
    .option('--json', 'print JSON')
    .action(async (name: string, o: { tracker?: string; json?: boolean }) => {
      const { trackerVersions } = await import('../../lib/index.js');
      const tracker = defaultTracker(o.tracker);
      const { versions, dropped } = await trackerVersions(tracker, name);
      warnDropped(dropped, `tracker ${tracker}`, !!o.json);
      if (versions.length === 0) throw new SwarmError(ERROR_CODES.NOT_FOUND, `no peer holds ${name}`);
      if (o.json) return void process.stdout.write(JSON.stringify({ name, versions }) + '\n');
      versions.forEach((v, i) => {
        process.stdout.write(`${i === 0 ? 'newest' : 'older '}  ${v.cid}  ${humanBytes(v.size)}  modified ${humanTime(v.mtime)} UTC\n`);
        for (const h of v.holders) process.stdout.write(`          ${addr(h)}\n`);
        for (const h of v.partial) process.stdout.write(`          ${addr(h)} (partial)\n`);
      });
      if (versions.length > 1) process.stdout.write(`fetch an older version with: swarm get ${printable(JSON.stringify(name))} --version CID\n`);
    });
}
