/**
 * `swarm sync DIR`: share DIR and keep it in step with the members of its folder (seeds 000 and
 * 002): new and newer files fetched (chunked, from every holder, mtime from the peer), deletions
 * passed on, conflicts kept as copies. `--once` syncs and exits.
 *
 * Members hold the folder key (DIR/.swarm/sync-key): `--new-key` makes one, `--key FILE` brings
 * one from another member, and later runs use the one in DIR. Without a key, sync refuses to run
 * unless `--open` says that any peer may change the folder.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import * as constants from '../../lib/constants.js';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';
import { sayTrackerChanges, trackerText } from '../views/tracker-view.js';
import { count, humanBytes, printable } from '../format.js';
import { BurstLines, conflictLine, deletedHereManyLine, syncView } from '../views/sync-view.js';
import { boundedInt, boundedNumber, existingFileOption } from '../options.js';
import { addPeerOptions, checkLogFile, onInterrupt, peerNodeOptions, refuseTrackerConflict, type PeerCliOptions } from './common.js';
import { addDiscoveryOptions, discoveryNodeOptions, type DiscoveryCliOptions } from './discovery-options.js';

interface SyncCliOptions extends DiscoveryCliOptions, PeerCliOptions {
  json?: boolean;
  once?: boolean;
  delete: boolean;
  trashDays: number;
  parallel: number;
  key?: string;
  newKey?: boolean;
  open?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('sync')
    .description('keep a folder in step with the swarm: fetch what is new or newer, pass on deletions, keep conflicts')
    .argument('<dir>', 'folder to keep in step (subfolders included)')
    .option('--once', 'sync once and exit (for scripts; listens on a free port unless --port): exit 0 in step, 4 when no member was found or files could not be fetched, 7 when every member refused, 130 when stopped')
    .option('--no-delete', 'never delete here because a peer did, and pass no deletions on')
    .option('--trash-days <days>', 'days replaced and deleted files stay in DIR/.swarm/trash/ (0 to 36500)', boundedNumber(0, 36500, 'days'), 30)
    .option('--parallel <n>', 'big files fetched at once (1 to 64; small files go in batches)', boundedInt(1, 64), 4)
    .option('--key <keyfile>', 'the folder key of the other members (a copy of their DIR/.swarm/sync-key); kept in DIR/.swarm/sync-key', existingFileOption)
    .option('--new-key', 'make a new folder key in DIR/.swarm/sync-key (copy it to the other members)')
    .option('--open', 'no folder key: every peer that syncs may change this folder (trusted networks only)');
  addPeerOptions(cmd, { port: 'peer port (0 picks a free one)', defaultPort: constants.DEFAULT_PEER_PORT, tracker: 'tracker to register with and read the directory of (default: embed one, or join the local one)' }).option('--json', 'print NDJSON events (syncing, tracker, fetching, progress, fetched, conflict, deleted, deleted-here, deleted-here-many, folder-back, in-step, warning, stopping, stopped, error; README lists their fields)')
    .addHelpText('after', '\nExit codes: see README (--once: 0 in step, 4 no member found or files not fetched, 7 every member refused, 130 stopped).');
  addDiscoveryOptions(cmd).action(async (dir: string, o: SyncCliOptions) => {
    refuseTrackerConflict();
    // --once is a short visit: beside a long-running sync on the same machine the default port is
    // taken, so it listens on a free one unless told (it still registers that port)
    if (o.once && cmd.getOptionValueSource('port') === 'default') o.port = 0;
    if (o.log) checkLogFile(o.log);
    if ([o.key !== undefined, o.newKey, o.open].filter(Boolean).length > 1) throw new SwarmError(ERROR_CODES.USAGE, '--key, --new-key and --open: one at most');
    const discovery = discoveryNodeOptions(o);
    const { serve, openLogFile, Syncer } = await import('../../lib/index.js');
    const keys = await import('../../lib/index.js');
    const view = await syncView({ json: !!o.json });
    const say = view.say;
    // the key before anything listens: a folder that cannot sync safely does not start
    const root = path.resolve(dir);
    // a typo must not become a new empty folder that syncs (serve refuses it the same way)
    const st = await stat(root).catch(() => null);
    if (!st?.isDirectory()) throw new SwarmError(ERROR_CODES.NOT_FOUND, `not a folder: ${printable(dir)} (make it first to sync into a new folder)`);
    const keyFile = path.join(root, constants.STATE_DIR_NAME, keys.KEY_FILE);
    let key = null;
    if (o.newKey) {
      key = await keys.createFolderKey(root);
      say(`new folder key in ${keyFile} (folder id ${key.id}): copy that file to the other members and run swarm sync DIR --key FILE there`, { event: 'key', path: keyFile, folder: key.id, message: `folder id ${key.id}` });
    } else if (o.key !== undefined) key = await keys.importFolderKey(root, o.key);
    else if (!o.open) {
      key = await keys.loadFolderKey(root);
      if (!key) {
        throw new SwarmError(
          ERROR_CODES.USAGE,
          `${printable(root)} has no folder key: run swarm sync DIR --new-key on the first machine, then swarm sync DIR --key FILE on the others (FILE: a copy of its ${constants.STATE_DIR_NAME}/${keys.KEY_FILE}); or --open to let any peer change this folder`,
        );
      }
    } else if (await keys.loadFolderKey(root)) {
      throw new SwarmError(ERROR_CODES.USAGE, `${printable(root)} has a folder key (${constants.STATE_DIR_NAME}/${keys.KEY_FILE}): --open would ignore it; remove the file to sync it open`);
    }
    if (!key) say('warning: syncing open (no folder key): any peer that can reach this one can change and delete files here', { event: 'warning', message: 'syncing open (no folder key): any peer that can reach this one can change and delete files here' });
    // one sync per folder, told before anything listens (a second sync would otherwise hear that
    // the port is taken, not why)
    const lock = await keys.lockSyncFolder(root);
    const fileLog = o.log ? openLogFile(o.log) : null;
    const node = await serve(dir, {
      ...peerNodeOptions(o),
      ...(fileLog ? { log: fileLog.log, ignore: [o.log!] } : {}),
      ...discovery,
      onWarning: (m, info) => {
        // the share folder itself gone (moved away, unmounted): sync says it in its own words
        // ("... is not the folder sync started on"), once; the scan's "unreadable folder" beside
        // it read as a second, different trouble (newcomer 53)
        if (info?.code === ERROR_CODES.SKIPPED && info.name === '' && !existsSync(root)) return;
        say(`warning: ${printable(m)}`, { event: 'warning', message: m, ...info });
      },
    }).catch(async (err: unknown) => {
      await lock.release();
      throw err;
    });
    const syncer = new Syncer(node, { ...(key ? { key } : { open: true }), noDelete: !o.delete, trashDays: o.trashDays, parallel: o.parallel, lock });
    syncer.on('fetching', (e) => say(`fetching ${printable(e.name)} (${humanBytes(e.size)}) from ${count(e.from, 'peer')}...`, { event: 'fetching', name: e.name, size: e.size, peers: e.from }));
    syncer.on('fetched', (e) =>
      say(`fetched ${printable(e.name)} (${humanBytes(e.size)}) from ${count(e.from, 'peer')}${e.replaced ? '; the version it replaced is in .swarm/trash' : ''}`, {
        event: 'fetched',
        name: e.name,
        size: e.size,
        peersUsed: e.from,
        ...(e.replaced ? { replaced: true } : {}),
      }),
    );
    // a peer's `rm -r` of a big folder: the first lines, then one for the rest (each file still an event)
    const deletions = new BurstLines(
      (line) => say(line, {}),
      (n) => `... and ${count(n, 'more file')} deleted (a peer deleted them; kept in ${constants.STATE_DIR_NAME}/trash)`,
    );
    syncer.on('deleted', (e) => {
      if (o.json) say('', { event: 'deleted', ...e });
      else deletions.add(`deleted ${printable(e.name)} (a peer deleted it; kept in ${constants.STATE_DIR_NAME}/trash)`);
    });
    // many at once (`rm -r` of a big folder): one line for a person, each file still as an event
    syncer.on('deletedHere', (e) => {
      if (e.many && !o.json) return;
      say(`deleted here: ${printable(e.name)} (${o.delete ? 'passed on to the others' : 'not passed on: --no-delete'})`, { event: 'deleted-here', name: e.name });
    });
    syncer.on('deletedHereMany', (e) => say(deletedHereManyLine(e, { passedOn: o.delete, trashDays: o.trashDays }), { event: 'deleted-here-many', ...e }));
    syncer.on('conflict', (e) => say(conflictLine(e), { event: 'conflict', ...e }));
    syncer.on('back', (e) => say(`${printable(e.dir)} is back: following it again`, { event: 'folder-back', ...e }));
    syncer.on('warning', (m, info) => say(`warning: ${printable(m)}`, { event: 'warning', message: m, ...info }));
    // a tracker lost (its host stopped: members met keep syncing, a newcomer finds no one) or back
    sayTrackerChanges(node, say);
    // how much is left: polled 4 times a second (a bar, or a progress event a second), and at the end
    const showProgress = () => view.progress(syncer.progress());
    const progressTimer = setInterval(showProgress, 250);
    progressTimer.unref();
    try {
      await syncer.start();
      const files = node.library.files();
      const members = key ? `folder ${key.id}, device ${syncer.deviceId}` : `open, device ${syncer.deviceId}`;
      say(`syncing ${node.library.root} (${count(files.length, 'file')}; ${members}) on ${node.host}:${node.port}; ${trackerText(node)}`, {
        event: 'syncing',
        id: syncer.deviceId,
        folder: key ? key.id : null,
        dir: node.library.root,
        host: node.host,
        port: node.port,
        files: files.length,
        tracker: node.tracker?.address ?? null,
        trackerConnected: !!node.tracker?.client.connected,
        embeddedTracker: !!node.tracker?.embedded,
      });
      // Ctrl-C (or SIGTERM) from here on stops cleanly, the first pass included (a first sync is the
      // long one): what was verified lands, the index and the lock are written and released
      let interrupted = false;
      const stopped = onInterrupt(
        async () => {
          interrupted = true;
          say('stopping (Ctrl-C again to quit now)', { event: 'stopping' });
          await syncer.close();
          await node.close({ graceful: true });
        },
        async () => {
          await node.close({ graceful: false });
        },
      );
      stopped.catch(() => {}); // awaited below; never unhandled meanwhile
      const r = await syncer.syncOnce({ everyPeer: !!o.once });
      if (interrupted) {
        await stopped;
        deletions.flush();
        say('stopped', { event: 'stopped' });
        if (o.once) throw new SwarmError(ERROR_CODES.INTERRUPTED, 'stopped before the folder was in step (run again to go on)');
        return;
      }
      // what the folder holds now: files sync landed or deleted are in the library already
      // (adopted, or Library.removedHere), so no walk of the whole folder is needed to count them
      const now = node.library.files();
      const inStep = () => {
        deletions.flush();
        showProgress(); // the last counts (a final progress event), and the bar taken down
        view.stop();
        say(`in step: ${count(now.length, 'file')}${r.pending ? `; ${count(r.pending, 'file')} could not be fetched yet` : ''}`, { event: 'in-step', files: now.length, pending: r.pending });
      };
      // --once says "in step" only after the checks that make it fail
      if (o.once) {
        // refused by (or refusing) every peer it found: nothing was synced, and a script must see it
        const { read, refused } = syncer.members();
        if (read === 0 && refused > 0) throw new SwarmError(ERROR_CODES.SYNC_DENIED, `no member of this folder could be read (${count(refused, 'peer')} refused, see the warnings): members need the same folder key (--key FILE), or all --open`);
        // nobody to sync with is not "in step": a script must not take it for a sync that happened
        if (!syncer.reachedAnyone()) {
          const asked = node.tracker ? `tracker ${node.tracker.address}` : 'no tracker';
          const named = o.neighbor?.length ? `, neighbours ${o.neighbor.join(', ')}` : '';
          const hint = named ? 'check that swarm sync runs there on that port (a neighbour that does not answer within 3 s counts as none)' : 'start swarm sync on another machine, or name one with --neighbor';
          throw new SwarmError(ERROR_CODES.NO_PEERS, `no other member of this folder was found (${asked}${named}): nothing was synced; ${hint}`);
        }
        inStep();
        if (r.pending) throw new SwarmError(ERROR_CODES.NO_PEERS, `${count(r.pending, 'file')} could not be fetched (see the warnings); run again to retry`);
        return;
      }
      inStep();
      syncer.on('idle', (e) => {
        deletions.flush();
        say(`in step: ${count(e.files, 'file')}${e.pending ? `; ${e.pending} waiting to be retried` : ''}`, { event: 'in-step', ...e });
      });
      await stopped;
      deletions.flush();
      say('stopped', { event: 'stopped' });
    } finally {
      clearInterval(progressTimer);
      view.stop();
      await syncer.close();
      await node.close({ graceful: false });
      await fileLog?.close();
    }
  });
}
