/**
 * Running one ticket (tickets.ts) once syncer.ts's pump() started it: what is done about one name
 * in the folder, and nothing about which ticket runs when (the queue, the slots and the window are
 * the syncer's). Every ticket ends at the syncer, done (counted and told) or failed (retried later).
 *
 *   small file (one chunk) ─► fetched on a pipe (small.ts) ─► landing.ts: verified and staged on
 *                             the chunk pool, a batch
 *   deletion ─► landing.ts: to the trash ─► the tombstone remembered
 *   bigger file ─► get() by content id from the members that hold it ─► verified whole: the
 *                  version it replaces kept (landing.ts: the trash, or a conflict copy) ─► the new
 *                  one takes the name ─► the index follows the library
 */
import { lstatSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { SwarmNode } from '../node/node.js';
import { isLegacyCid } from '../protocol/entries.js';
import { notSharedName } from '../share/names.js';
import type { PeerAddress } from '../types.js';
import { Landing, type LandingHost } from './landing.js';
import { lineage } from './plan.js';
import { landingEntry } from './landing-record.js';
import type { Pipe } from './small.js';
import type { Ticket } from './tickets.js';

/** What a run needs of the syncer, and where each ticket ends (besides what landing.ts tells it). */
export interface TicketRunHost extends LandingHost {
  readonly node: SwarmNode;
  /** Sync was stopped: what was fetched is not staged any more. */
  closed(): boolean;
  /** The members whose index holds this version of `name` now. */
  holdersOf(name: string, cid: string): PeerAddress[];
  /** A big file starts coming. */
  fetching(e: { name: string; size: number; from: number }): void;
  /** A deletion ticket is done: `gone`, the file went to the trash (else it was left alone, and said why). */
  deleted(t: Ticket, gone: boolean): void;
  /** A small fetch failed: its ticket ends (its place in the small window is free again). */
  smallFailed(t: Ticket): void;
}

export class TicketRunner {
  /** Where fetched, replaced and deleted files go (batches, the trash, conflict copies). */
  readonly landing: Landing;
  /** Files fetched from stock seed-002 peers (a directory entry alone proves no peer was reached). */
  stockFetched = 0;
  /** Bytes verified so far of each big file coming now (for progress: a big file is not 0 B until it lands). */
  readonly coming = new Map<Ticket, number>();

  constructor(private readonly host: TicketRunHost) {
    this.landing = new Landing(host);
  }

  /** A small file: fetched and verified on the pipe, written to a temp file, then into a batch. */
  async fetchSmall(t: Ticket, pipe: Pipe): Promise<void> {
    try {
      // verified and written to its temp file on the chunk pool, then into a batch (landing.ts)
      await pipe.fetch(t.remote.cid, t.remote.size, (data) => (this.host.closed() ? Promise.reject(new SwarmError(ERROR_CODES.PEER_CLOSED, 'sync stopped')) : this.landing.verifyAndStage(t, data)));
    } catch (err) {
      this.host.failed(t, err);
      this.host.smallFailed(t);
      this.landing.fetchFailed();
    }
  }

  /**
   * Before a big file takes its name: the version here must still be the one its ticket was
   * planned against, as the library last saw it. An edit made here while the download ran (it
   * can take minutes) is not replaced by an older version nor sent to the trash as a replaced
   * one: the try fails (FILE_CHANGED), the verified part file stays, and the plan is made again
   * from the edit (the newer one wins; a conflict keeps both).
   */
  private stillHere(t: Ticket): void {
    const { index } = this.host;
    const lib = this.host.node.library!;
    const entry = index.get(t.name);
    const cidHere = entry && entry.deleted === undefined ? entry.cid : '';
    const st = lstatSync(path.join(lib.root, ...t.name.split('/')), { throwIfNoEntry: false });
    const seen = lib.statOf(t.name);
    const same = st ? !!seen && st.isFile() && st.size === seen.size && st.mtimeMs === seen.mtimeMs && st.ino === seen.ino && st.dev === seen.dev : true;
    // and what the library hashed there is that version: an edit it hashed whose stillness the
    // index still waits for (local.ts STABLE_MS, up to MAX_STABLE_MS) is in no index entry yet,
    // and was replaced by the older version coming, kept only in the trash
    const hashed = st ? (lib.stat(t.name)?.cid ?? '') : t.here;
    if (cidHere !== t.here || !same || hashed !== t.here) {
      throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${t.name} changed here while another version was being fetched: it was left as it is, and what to do is decided again`);
    }
  }

  /** A deletion, or a file of more than one chunk (a download from every member that has it). */
  async work(t: Ticket): Promise<void> {
    const { node, index } = this.host;
    const landing = this.landing;
    const root = node.library!.root;
    try {
      // (readers.ts drops such names already) never delete or write swarm's state or own files
      const problem = notSharedName(t.name);
      if (problem) throw new SwarmError(ERROR_CODES.PATH_ESCAPE, `refused ${t.name}: ${problem}`);
      if (t.remote.deleted !== undefined) {
        const gone = await landing.delete(t.name);
        index.rememberDeletion(t.remote);
        this.host.deleted(t, gone);
        return;
      }
      const now = this.host.holdersOf(t.name, t.remote.cid);
      if (now.length) t.holders = now;
      if (t.holders.length === 0) throw new SwarmError(ERROR_CODES.NO_PEERS, 'no peer holds it now');
      this.host.fetching({ name: t.name, size: t.remote.size, from: t.holders.length });
      // by content id from the peers whose index has it: a peer whose folder changed since it
      // was read still serves the version it announced for as long as it has it
      const p = node.get(t.name, {
        outDir: root,
        known: { cid: t.remote.cid, size: t.remote.size, mtime: t.remote.mtime, holders: t.holders, partial: [] },
        overwrite: true,
        // the version here stays (served, and in the index) until the new one is whole and
        // verified: a download that never completes leaves it where it was
        beforeReplace: async () => {
          this.stillHere(t);
          // what the index will record, kept until it is saved: a kill -9 after the rename leaves
          // the file taken as fetched at restart, not as an edit made here (index-store.ts)
          index.willLand(landingEntry(t.name, t.remote));
          await landing.replacing(t);
        },
        peerThreads: 0,
      });
      p.download.on('peer-dropped', (e) => this.host.warn(`${t.name}: dropped ${e.peer}: ${e.reason}`, { code: e.code, name: t.name, peer: e.peer }));
      p.download.on('progress', (e) => this.coming.set(t, e.bytes));
      const r = await p.finally(() => this.coming.delete(t));
      // served before it is announced: the index says we have it only once the library does.
      // The node adopted it as it landed (no rescan); a rescan is only the fallback.
      const lib = node.library!;
      if (lib.stat(t.name)?.cid !== r.cid) await lib.refresh().catch(() => {});
      // from a stock peer (no content id until we hash it): the index keeps what the library hashed
      const cid = isLegacyCid(r.cid) ? lib.stat(t.name)?.cid : r.cid;
      if (!cid) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${t.name} changed while it was landing`);
      index.fetched(t.name, cid, t.remote.mtime, r.size, isLegacyCid(r.cid) ? undefined : lineage(t.remote), t.remote.maker);
      if (isLegacyCid(r.cid)) this.stockFetched++;
      this.host.fetched(t, r.size, t.holders.length);
    } catch (err) {
      this.host.failed(t, err);
    }
  }
}
