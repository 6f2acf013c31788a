/** `swarm ls`: files in a local folder (LISTL), on a peer (LISTR), or in a tracker's directory. */
import type { Command } from 'commander';
import { listLocal, listPeer, trackerDirectory, trackerWhoHas, parseHostPort, constants, SwarmError, ERROR_CODES } from '../../lib/index.js';
import { humanBytes, humanTime, printTable } from '../format.js';

export function register(program: Command): void {
  program
    .command('ls')
    .description('list files: in a folder (LISTL), on a peer (--peer, LISTR) or in the swarm (--tracker)')
    .argument('[dir]', 'local folder to list')
    .option('--peer <host:port>', 'list what this peer serves')
    .option('-t, --tracker <host:port>', 'list the tracker directory (name, size, mtime, holders)')
    .option('--json', 'print JSON')
    .action(async (dir: string | undefined, o: { peer?: string; tracker?: string; json?: boolean }) => {
      const modes = [dir !== undefined, !!o.peer, !!o.tracker].filter(Boolean).length;
      if (modes !== 1) throw new SwarmError(ERROR_CODES.USAGE, 'give exactly one of: a folder, --peer host:port, --tracker host:port');
      if (o.tracker) {
        const { host, port } = parseHostPort(o.tracker, constants.DEFAULT_TRACKER_PORT);
        const d = await trackerDirectory(host, port);
        const names = Object.keys(d).sort();
        if (o.json) return void process.stdout.write(JSON.stringify(names.map((n) => ({ name: n, ...d[n] }))) + '\n');
        if (names.length === 0) return void process.stdout.write('the directory is empty\n');
        printTable(
          ['NAME', 'SIZE', 'MODIFIED (UTC)', 'HOLDERS'],
          names.map((n) => [n, humanBytes(d[n]!.size), humanTime(d[n]!.mtime), d[n]!.holders.map((h) => `${h.ip}:${h.port}`).join(' ')]),
          [1],
        );
        return;
      }
      const files = o.peer ? await listPeer(o.peer) : await listLocal(dir!);
      if (o.json) return void process.stdout.write(JSON.stringify(files) + '\n');
      if (files.length === 0) return void process.stdout.write('no files\n');
      printTable(
        ['TYPE', 'NAME', 'SIZE', 'MODIFIED (UTC)'],
        files.map((f) => [f.kind, f.name, humanBytes(f.size), humanTime(f.mtime)]),
        [2],
      );
    });

  program
    .command('who')
    .description('which peers hold NAME (the tracker\'s who-has)')
    .argument('<name>', 'file name as the swarm knows it (relative path)')
    .requiredOption('-t, --tracker <host:port>', 'tracker to ask', process.env.SWARM_TRACKER ?? `127.0.0.1:${constants.DEFAULT_TRACKER_PORT}`)
    .option('--json', 'print JSON')
    .action(async (name: string, o: { tracker: string; json?: boolean }) => {
      const { host, port } = parseHostPort(o.tracker, constants.DEFAULT_TRACKER_PORT);
      const e = await trackerWhoHas(host, port, name);
      if (!e) throw new SwarmError(ERROR_CODES.NOT_FOUND, `no peer holds ${name}`);
      if (o.json) return void process.stdout.write(JSON.stringify({ name, ...e }) + '\n');
      process.stdout.write(`${name}  ${humanBytes(e.size)}  modified ${humanTime(e.mtime)} UTC  content ${e.cid}\n`);
      for (const h of e.holders) process.stdout.write(`  ${h.ip}:${h.port}\n`);
    });
}
