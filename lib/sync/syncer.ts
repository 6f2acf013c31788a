/**
 * `swarm sync DIR`: keeps a shared folder in step with the members of its folder (seeds 000 and
 * 002). The glue between the pieces:
 *
 *   local.ts      library change ─► once stable ─► SyncIndex (new, changed, deleted; a deletion
 *                 here is said, many at once also in one summary: telling.ts; and the folders it
 *                 emptied go: landing.ts)
 *   index-port.ts peers that proved the folder key ─► `sync-index` pages, `sync-news` to watchers
 *   readers.ts    peers (tracker holders, --neighbor, LAN, DISCOVER) ─► proof of the key ─► their
 *                 index pages (tagged) and news
 *   here          per name: the members' entries merged, decide() (plan.ts) ─► tickets.ts; pump()
 *                 starts them oldest first, within the small window and the `parallel` slots
 *   ticket-run.ts a started ticket, run:
 *                   fetch, one chunk (≤ 1 MiB) ─► pipelined on our watch connection (small.ts)
 *                                                ─► landing.ts: in batches, one barrier per batch
 *                   fetch, bigger ─► get(name, version, from the members that have it), mtime from them
 *                   conflict (we lose) ─► landing.ts: ours renamed NAME.sync-conflict-…-MAKER (conflict-copy.ts), then fetch
 *                   delete ─► landing.ts: to DIR/.swarm/trash/
 *
 * Membership (membership.ts): with a folder key, only peers that prove they hold it are read or
 * answered; `open` (no key) reads and answers every peer, as any peer can then change the folder.
 * A member's index is still a claim like any other: content is fetched by content id and every
 * chunk checked against it. An open folder also takes what stock seed-002 peers hold, as the
 * tracker's directory lists it (readers.ts): whole files by plain name when newer (plan.ts).
 */
import { EventEmitter } from 'node:events';
import type { TargetLock } from '../storage/lock.js';
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { SwarmNode } from '../node/node.js';
import { addressText } from '../types.js';
import { deviceIdOf } from './device-id.js';
import type { FolderKey } from './folder-key.js';
import { IndexPort } from './index-port.js';
import { SyncIndex } from './index-store.js';
import { LocalFollower } from './local.js';
import { planNames } from './plan-names.js';
import { EmptiedLater } from './emptied-later.js';
import { IndexReaders } from './readers.js';
import { isSmall } from './small.js';
import { isLegacyCid } from '../protocol/entries.js';
import { TicketRunner } from './ticket-run.js';
import { TicketQueue, type Ticket } from './tickets.js';
import { lockSyncFolder } from './folder-lock.js';
import { manyDeleted, memberCounts, Refusals, Tally, type SyncProgressCounts } from './telling.js';
import type { SyncEvents, SyncOptions } from './sync-types.js';

export { STABLE_MS } from './local.js';
export { lockSyncFolder } from './folder-lock.js';
export type { SyncEvents, SyncOptions, WarningInfo } from './sync-types.js';

/** Small files in flight (fetched, or waiting for their batch) at most. */
const SMALL_WINDOW = 512;
/** A small file whose holders' connections are all full or paused is looked at again after this. */
const PIPE_RETRY_MS = 1_000;
export { EMPTIED_GRACE_MS } from './emptied-later.js';
/** While the folder is not the one sync started on (moved, unmounted), it is looked at again this often. */
const ROOT_RETRY_MS = 1_000;
/** Tickets in a row that wait for a connection, after which pump() stops looking (the queue is FIFO). */
const PUMP_MAX_WAITING = 256;

export class Syncer extends EventEmitter<SyncEvents> {
  readonly index: SyncIndex;
  readonly key: FolderKey | null;
  /** This folder's device id (DIR/.swarm/device-id), known once started. */
  deviceId = '';
  private readonly tickets = new TicketQueue();
  private readonly readers: IndexReaders;
  /** Runs the tickets pump() starts, and lands their files (ticket-run.ts, landing.ts). */
  private readonly run: TicketRunner;
  private readonly local: LocalFollower;
  private running = 0;
  /** Fetches from stock seed-002 peers running (at most one). */
  private stockRunning = 0;
  /** Small files being fetched or waiting for their batch. */
  private smallActive = 0;
  private pullTimer: NodeJS.Timeout | null = null;
  /** The one pending 'look again' of pump(), and when it fires. */
  private pumpTimer: NodeJS.Timeout | null = null;
  private pumpAt = Infinity;
  private closed = false;
  /** Folders emptied by deletions here, removed after their grace (deletedHere). */
  private readonly emptied: EmptiedLater;
  private readonly parallel: number;
  /** Names to plan again (learnt since the last plan); 'all' after a whole index was read. */
  private planNames: Set<string> | 'all' | null = null;
  /** Peers that reached us and could not prove the key (telling.ts). */
  private readonly refusals = new Refusals((m, info) => this.emit('warning', m, info));
  /** DIR/.swarm/sync.swarm-lock, held while this syncer runs. */
  private lock: TargetLock | null = null;

  constructor(
    private readonly node: SwarmNode,
    private readonly o: SyncOptions = {},
  ) {
    super();
    if (!node.library || !node.server) throw new SwarmError(ERROR_CODES.USAGE, 'sync needs a node that shares a folder and listens');
    if (!o.key && !o.open) throw new SwarmError(ERROR_CODES.USAGE, 'sync needs a folder key, or to be told it is open (any peer may change the folder)');
    if (o.key && o.open) throw new SwarmError(ERROR_CODES.USAGE, 'a folder key and open contradict each other');
    this.key = o.key ?? null;
    const lib = node.library;
    this.index = new SyncIndex(lib.root, o.trashDays ?? 30);
    this.parallel = o.parallel ?? 4;
    this.local = new LocalFollower(
      lib,
      this.index,
      (names) => this.deletedHere(names),
      // (the folder or a disk in it not there: NOT_FOUND, with the folder's name in the message)
      (m) => this.emit('warning', m, { code: ERROR_CODES.NOT_FOUND }),
      (dir) => this.emit('back', { dir }),
    );
    this.readers = new IndexReaders({
      node,
      key: this.key,
      closed: () => this.closed,
      warn: (m, info) => this.emit('warning', m, info),
      read: (changed) => {
        this.planNames = changed === 'all' || this.planNames === 'all' ? 'all' : new Set([...(this.planNames ?? []), ...changed]);
      },
      readAll: () => {
        this.planNames = 'all';
        this.plan();
        this.pump();
      },
      newsRead: () => {
        this.plan();
        this.pump();
      },
    });
    const self = this;
    this.run = new TicketRunner({
      node,
      library: lib,
      pool: node.pool,
      ...(o.stageOnPool !== undefined ? { stageOnPool: o.stageOnPool } : {}),
      index: this.index,
      get deviceId() {
        return self.deviceId;
      },
      trashDays: o.trashDays ?? 30,
      closed: () => this.closed,
      smallActive: () => this.smallActive,
      current: (t) => this.tickets.current(t),
      holdersOf: (name, cid) => this.readers.holdersOf(name, cid),
      fetching: (e) => this.emit('fetching', e),
      fetched: (t, size, from) => {
        this.tickets.done(t);
        this.tally.counted(1, size);
        this.emit('fetched', { name: t.name, size, from, replaced: t.replaced === true });
      },
      deleted: (t, gone) => {
        this.tickets.done(t);
        this.tally.counted(1, 0);
        if (gone) this.emit('deleted', { name: t.name });
      },
      conflict: (e) => {
        const at = (cid: string) => this.readers.holdersOf(e.name, cid).map(addressText);
        this.emit('conflict', { name: e.name, copy: e.copy, here: e.here, ours: at(e.ours), theirs: at(e.theirs), ...(e.oursBy ? { oursBy: e.oursBy } : {}), ...(e.theirsBy ? { theirsBy: e.theirsBy } : {}) });
      },
      failed: (t, err) => this.failed(t, err),
      batchDone: (ts) => this.end(ts, () => this.smallActive--),
      smallFailed: (t) => this.end(t, () => this.smallActive--),
      warn: (m, info) => this.emit('warning', m, info),
    });
    this.emptied = new EmptiedLater((names, o) => this.run.landing.removeEmptied(names, o), o.emptiedGraceMs);
  }

  async start(): Promise<void> {
    this.lock = this.o.lock ?? (await lockSyncFolder(this.node.library!.root));
    await this.index.load();
    this.index.deviceId = this.deviceId = await deviceIdOf(this.node.library!.root);
    await this.run.landing.lander.clearTemps();
    this.local.start();
    this.node.server!.sync = new IndexPort(this.index, this.key, this.node.peerId, {
      watchedBy: (a) => this.readers.watchedBy(a),
      refused: (link, reason) => this.refusals.refusedBy(link, reason),
    });
    await this.index.save();
    this.pullTimer = setInterval(() => void this.readers.pullAll(), this.o.pullMs ?? 10_000);
    this.pullTimer.unref();
  }

  /** Peers whose index was read, and peers refused as not members (for `--once`'s verdict). */
  members(): { read: number; refused: number } {
    return memberCounts(this.readers);
  }

  /**
   * True once a member's index was read, or a file was fetched from a stock peer. Stock entries
   * come from the tracker's directory, which anyone can write: on their own they prove no peer
   * answered (a stale or planted entry older than our copy fetched nothing, and is no sync).
   */
  reachedAnyone(): boolean {
    return this.members().read > 0 || this.run.stockFetched > 0;
  }

  /** Read every peer's index, plan, and run the tickets; resolves when none is left that can run now. */
  async syncOnce(o: { everyPeer?: boolean } = {}): Promise<{ pending: number }> {
    // local files still being written are announced once they hold still (at most a few seconds)
    for (let i = 0; i < 200 && this.local.settlingCount > 0 && !this.closed; i++) await new Promise((r) => setTimeout(r, 25));
    // (`--once`: peers a round had no place for are dialled now: dial-plan.ts)
    if (o.everyPeer) await this.readers.rounds.everyPeer(() => this.readers.pullAll(), () => this.closed);
    else await this.readers.pullAll();
    await this.drain();
    return { pending: this.tickets.size };
  }

  /** Decide, for every name any member mentions (or those changed since), what to do here; queue tickets (plan-names.ts). */
  private plan(): void {
    const which = this.planNames;
    this.planNames = null;
    if (which === null) return;
    planNames(which, this.readers.remote, this.index, this.tickets, { noDelete: this.o.noDelete });
    this.index.saveSoon();
  }

  /**
   * Start tickets while there is room: oldest first (seed 000's queue); failing ones wait their
   * turn. Small files (one chunk) go to the pipelined batches (SMALL_WINDOW at once) when a peer
   * that has them is connected; the others take one of `parallel` download slots.
   */
  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    // the folder is not the one we started on (moved away, replaced, unmounted): nothing is
    // fetched into, nor deleted from, whatever is at its path now; looked at again shortly
    if (!this.local.sameRoot()) {
      this.pumpAgainAt(now + ROOT_RETRY_MS, now);
      return;
    }
    let next = Infinity;
    let stale = 0;
    let waiting = 0;
    for (const t of this.tickets.ordered()) {
      if (!this.tickets.current(t)) {
        stale++;
        continue;
      }
      if (t.started) continue;
      if (this.smallActive >= SMALL_WINDOW && this.running >= this.parallel) break; // full: the next end pumps again
      if (t.notBefore > now) {
        next = Math.min(next, t.notBefore);
        continue;
      }
      if (this.index.busy.has(t.name)) continue;
      const small = t.remote.deleted === undefined && t.remote.size >= 0 && !isLegacyCid(t.remote.cid) && isSmall(t.remote.size);
      if (small && this.smallActive >= SMALL_WINDOW) {
        // the window is full: the next end pumps again (and a run of these ends the look)
        if (++waiting >= PUMP_MAX_WAITING) break;
        continue;
      }
      const pipe = small ? this.readers.pipeFor(t.name, t.remote.cid, now) : null;
      if (pipe === 'wait') {
        // its holders' connections are full or paused for a stall: looked at again shortly (the
        // next end pumps again); past a run of these the rest waits too, so that a pump stays
        // cheap with 10,000 tickets queued
        next = Math.min(next, now + PIPE_RETRY_MS);
        if (++waiting >= PUMP_MAX_WAITING) break;
        continue;
      }
      waiting = 0;
      if (pipe) {
        this.smallActive++;
        this.begin(t);
        void this.run.fetchSmall(t, pipe);
        continue;
      }
      if (isLegacyCid(t.remote.cid) && t.remote.deleted === undefined) {
        // stock peers' files one at a time, beside the `parallel` slots: entries anyone can
        // register (dated early, so first in the queue, from a holder that never answers) cannot
        // take the slots that members' files need
        if (this.stockRunning > 0) continue;
        this.stockRunning++;
        this.begin(t);
        void this.run.work(t).finally(() => this.end(t, () => this.stockRunning--));
        continue;
      }
      if (this.running >= this.parallel) continue;
      this.running++;
      this.begin(t);
      void this.run.work(t).finally(() => this.end(t, () => this.running--));
    }
    this.tickets.compact(stale);
    // a ticket waiting for its retry time (or a connection) is looked at again then: one timer
    this.pumpAgainAt(next, now);
  }

  private pumpAgainAt(next: number, now: number): void {
    if (next < this.pumpAt) {
      if (this.pumpTimer) clearTimeout(this.pumpTimer);
      this.pumpAt = next;
      this.pumpTimer = setTimeout(() => {
        this.pumpTimer = null;
        this.pumpAt = Infinity;
        this.pump();
      }, next - now + 5);
      this.pumpTimer.unref();
    }
  }

  private begin(t: Ticket): void {
    t.started = true;
    this.index.busy.set(t.name, t.remote.deleted === undefined ? t.remote.cid : '');
  }

  /** Tickets are done (landed, deleted, or failed and waiting for their retry). */
  private end(ts: Ticket | Ticket[], release: () => void): void {
    const list = Array.isArray(ts) ? ts : [ts];
    const names = this.planNames === 'all' ? null : new Set(this.planNames ?? []);
    for (const t of list) {
      release();
      t.started = false;
      this.index.busy.delete(t.name);
      // what a peer announced for this name meanwhile (a newer version) is planned now
      names?.add(t.name);
    }
    this.planNames = names ?? 'all';
    this.plan();
    this.index.saveSoon();
    this.pump();
    this.idleNow();
  }

  /** Nothing runs: what is known is done here, said with the folder's count of files now. */
  private idleNow(): void {
    if (this.running === 0 && this.smallActive === 0 && this.stockRunning === 0) this.emit('idle', { files: this.node.library!.files().length, pending: this.tickets.size });
  }

  /**
   * Files deleted in the folder (not by sync): said (many at once: each, and one summary,
   * telling.ts), and the count of files, which changed; the folders they emptied go later
   * (EMPTIED_GRACE_MS), as on every member that takes the deletion (landing.ts), unless touched meanwhile.
   */
  private deletedHere(names: string[]): void {
    const many = manyDeleted(names, this.node.library!.files().length + names.length);
    for (const name of names) this.emit('deletedHere', many ? { name, many: true } : { name });
    if (many) this.emit('deletedHereMany', many);
    this.idleNow();
    if (!this.o.noDelete) this.emptied.after(names);
  }

  /**
   * Resolves when every ticket is done, or has failed ONCE_ATTEMPTS times (a peer that changed
   * its folder meanwhile, or was busy, usually answers the second time), or sync was closed.
   */
  private async drain(): Promise<void> {
    // closed (Ctrl-C in a first pass): what runs has ended or is ending; what waits never starts
    for (; !this.closed; ) {
      // the folder moved away or unmounted: nothing runs until it is back (what is left is pending)
      if (!this.local.sameRoot()) return;
      this.pump();
      if (this.running === 0 && this.smallActive === 0 && this.stockRunning === 0 && this.tickets.open() === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private failed(t: Ticket, err: unknown): void {
    const { message, code } = this.tickets.failed(t, err);
    // stopped (Ctrl-C): the download was cut on purpose and is not tried again in this run
    if (!this.closed) this.emit('warning', message, { code, name: t.name });
  }

  /** Tickets not done yet (waiting, running or to be retried). */
  get pending(): number {
    return this.tickets.size;
  }

  private readonly tally = new Tally();

  /** For progress: done since the start, and what is left as known now (telling.ts). */
  progress(): SyncProgressCounts {
    return this.tally.progress(this.tickets.toGo(), this.run.coming.values());
  }

  private closing: Promise<void> | null = null;

  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    this.closed = true;
    if (this.pullTimer) clearInterval(this.pullTimer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.local.close();
    this.readers.close();
    await this.emptied.close();
    // what was verified lands (it is durable once it does); then the state is written
    await this.run.landing.close();
    await this.index.save();
    await this.node.library?.flush();
    await this.lock?.release();
  }
}
