/**
 * `swarm search PATTERN`: files matching a name pattern, from the overlay (seed 001's SEARCH, TTL
 * hops through the neighbours), the LAN and the tracker's directory, merged by name and content id.
 * `swarm peers`: the peers this swarm knows, where each was learnt and when it was last seen
 * (with `--discover TTL`, seed 001's DISCOVER first).
 */
import type { Command } from 'commander';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { defaultTracker, trackerNamed } from '../../lib/constants.js';
import { count, humanBytes, humanTime, printTable, printable } from '../format.js';
import { addressOption, MAX_TTL, ttlOption, waitOption } from '../options.js';
import { addDiscoveryOptions, discoveryNodeOptions, type DiscoveryCliOptions } from './discovery-options.js';
import { addressText } from '../../lib/types.js';
import { seenAt } from '../../lib/discovery/peer-book.js';

/**
 * A warning on stderr: text, or with --json one NDJSON line ({"event":"warning","message"}) as
 * the other commands' warnings, so stdout stays the one JSON document and stderr stays parseable.
 */
function warn(message: string, json: boolean | undefined): void {
  process.stderr.write(json ? JSON.stringify({ event: 'warning', message }) + '\n' : `warning: ${printable(message)}\n`);
}

const addr = addressText;
const peerJson = (h: { ip: string; port: number }) => ({ ip: h.ip, port: h.port });

interface CommonOptions extends DiscoveryCliOptions {
  tracker?: string | boolean;
  wait?: number;
  json?: boolean;
}

function trackerOptions(o: CommonOptions): { tracker?: string; noTracker: boolean } {
  return { ...(typeof o.tracker === 'string' ? { tracker: o.tracker } : {}), noTracker: o.tracker === false };
}

export function register(program: Command): void {
  addDiscoveryOptions(
    program
      .command('search')
      .description('find files by name in the swarm: overlay neighbours, the LAN, the tracker')
      .argument('<pattern>', 'part of a name (case-insensitive), or a glob with * and ? matched against the whole path or, without a /, the file name (quote it)')
      .option('--ttl <hops>', `how far the overlay search goes, 1 to ${MAX_TTL} hops`, ttlOption, 5)
      .option('--wait <seconds>', 'how long to wait for answers at most, 0.1 to 60 (it stops 0.5 s after the last answer)', waitOption, 2)
      .option('-t, --tracker <host:port>', `also search this tracker's directory (default: $SWARM_TRACKER, else ${defaultTracker()})`, addressOption)
      .option('--no-tracker', 'do not ask a tracker'),
  )
    .option('--json', 'print the results as JSON')
    .addHelpText(
      'after',
      `
Every holder found is listed with the content id (cid) of its version: fetch one with
swarm get NAME (add --neighbor/--lan to get through the overlay without a tracker).
Exit code 3 when nothing matches; a source that cannot be reached is a warning.`,
    )
    .action(async (pattern: string, o: CommonOptions & { ttl: number }) => {
      // as `who` and `get`: a command line that names nowhere to ask is a usage error, not "no peers"
      if (o.tracker === false && !o.neighbor?.length && !o.lan) throw new SwarmError(ERROR_CODES.USAGE, 'nowhere to search: --no-tracker needs --neighbor or --lan');
      const { SwarmNode } = await import('../../lib/index.js');
      const node = await SwarmNode.start({ listen: false, embed: false, threads: 0, ...trackerOptions(o), ...discoveryNodeOptions(o) });
      try {
        const named = trackerNamed(typeof o.tracker === 'string' ? o.tracker : undefined);
        const { results, asked, warnings } = await node.discovery.search(pattern, { ttl: o.ttl, waitMs: (o.wait ?? 2) * 1000, quietTracker: !named });
        for (const w of warnings) warn(w, o.json);
        const from = asked.join(' and ');
        // nothing: one error (exit 3) and, with --json, that error as the one document
        if (results.length === 0) throw new SwarmError(ERROR_CODES.NOT_FOUND, `nothing matches ${pattern} (asked ${from})`);
        if (o.json) process.stdout.write(JSON.stringify(results.map((r) => ({ name: r.name, kind: r.kind, size: r.size, mtime: r.mtime, cid: r.cid, holders: r.holders.map(peerJson), sources: r.sources }))) + '\n');
        else {
          printTable(
            ['NAME', 'KIND', 'SIZE', 'MODIFIED (UTC)', 'CID', 'HOLDERS'],
            results.map((r) => [printable(r.name), r.kind, humanBytes(r.size), humanTime(r.mtime), r.cid.slice(0, 16), r.holders.map(addr).join(' ')]),
            [2],
          );
          process.stderr.write(`${count(results.length, 'result')} from ${from}\n`);
        }
      } finally {
        await node.close({ graceful: false });
      }
    });

  addDiscoveryOptions(
    program
      .command('peers')
      .description('the peers this swarm knows: neighbours, the LAN, the tracker, and peers found through the overlay')
      .option('--discover <hops>', `first ask the overlay who is within this many hops, 1 to ${MAX_TTL} (default 1 with --neighbor or --lan)`, ttlOption)
      .option('--wait <seconds>', 'how long to listen for answers from the LAN and the overlay, 0.1 to 60', waitOption, 2)
      .option('-t, --tracker <host:port>', `also list the holders a tracker knows (default: $SWARM_TRACKER, else ${defaultTracker()})`, addressOption)
      .option('--no-tracker', 'do not ask a tracker'),
  )
    .option('--json', 'print the peers as JSON')
    .action(async (o: CommonOptions & { discover?: number }) => {
      const { SwarmNode, trackerDirectory } = await import('../../lib/index.js');
      const node = await SwarmNode.start({ listen: false, embed: false, threads: 0, ...trackerOptions(o), ...discoveryNodeOptions(o) });
      try {
        const waitMs = (o.wait ?? 2) * 1000;
        const tracker = node.trackerAddress();
        const jobs: Promise<unknown>[] = [];
        const elsewhere = !!(o.neighbor?.length || o.lan);
        let trackerError: string | null = null;
        if (tracker) {
          jobs.push(
            trackerDirectory(tracker).then(
              ({ entries }) => {
                for (const [, e] of entries) for (const h of [...e.holders, ...e.partial]) node.book.add(h, 'tracker');
              },
              (err: Error) => {
                trackerError = err.message.includes(tracker) ? err.message : `tracker ${tracker}: ${err.message}`;
              },
            ),
          );
        }
        // named neighbours are asked at least who they are (DISCOVER within 1 hop), so what is
        // shown was seen, not only typed
        const hops = o.discover ?? (o.neighbor?.length || o.lan ? 1 : 0);
        // the tracker's holders are neighbours to discover through too: ask it first (with only a
        // tracker, a DISCOVER started at once found an empty book and flooded nobody)
        if (hops) jobs.push(Promise.all([...jobs]).then(() => node.discovery.discoverPeers(hops, waitMs)));
        await Promise.all(jobs);
        const peers = node.discovery.peers();
        if (trackerError !== null) {
          // the tracker was the only place to look, and it did not answer: exit 4, as search does
          if (!elsewhere && peers.length === 0) throw new SwarmError(ERROR_CODES.TRACKER_UNREACHABLE, trackerError);
          if (!elsewhere || trackerNamed(typeof o.tracker === 'string' ? o.tracker : undefined)) warn(trackerError, o.json);
        }
        if (o.json) return void process.stdout.write(JSON.stringify(peers.map((p) => ({ ip: p.ip, port: p.port, id: p.peer ?? null, sources: p.sources, lastSeen: seenAt(p) ? Math.floor(seenAt(p) / 1000) : null }))) + '\n');
        // the (empty) result on stdout, as `ls` says "no files"
        if (peers.length === 0) {
          // (say what was not tried: --lan with nobody on the LAN was told to try --lan)
          const tried = [o.neighbor?.length ? 'the named neighbours' : '', o.lan ? 'the LAN' : '', tracker ? 'the tracker' : ''].filter(Boolean);
          const next = [o.neighbor?.length ? '' : 'name one with --neighbor', o.lan ? '' : 'try --lan', tracker ? '' : 'a tracker'].filter(Boolean);
          return void process.stdout.write(`no peers known${tried.length ? ` (asked ${tried.join(', ')})` : ''}${next.length ? `; ${next.join(', or ')}` : ''}\n`);
        }
        const now = Date.now();
        printTable(
          ['ADDRESS', 'PEER ID', 'FROM', 'LAST SEEN'],
          peers.map((p) => [addr(p), p.peer ?? '-', p.sources.join(','), seenAt(p) ? `${Math.max(0, Math.round((now - seenAt(p)) / 1000))} s ago` : 'never (no answer)']),
        );
      } finally {
        await node.close({ graceful: false });
      }
    });
}
