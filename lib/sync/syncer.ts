/**
 * `swarm sync DIR`: keeps a shared folder in step with its peers (seeds 000 and 002).
 *
 *   library change ─► once stable ─► SyncIndex (new, changed, deleted) ─► watchers hear `sync-news`
 *   peers (tracker directory holders, --neighbor, LAN, DISCOVER) ─► `sync-index` pages, `sync-watch`
 *      └► per name: their entries merged, decide() (plan.ts) ─► tickets, oldest first:
 *           fetch, one chunk (≤ 1 MiB) ─► pipelined on our watch connection, landed in batches
 *                                         (small.ts: verified, temp file, one barrier per batch)
 *           fetch, bigger ─► get(name, version, from the peers that have it) into DIR, mtime from them
 *           conflict (we lose) ─► our version renamed to NAME.sync-conflict-…, then fetch
 *           delete ─► to DIR/.swarm/trash/
 *
 * A file still being written here (its mtime younger than STABLE_MS) is announced only once its
 * stat stayed the same for STABLE_MS: peers never fetch a half-written version. After a watched
 * peer's news, only what changed since the version read last is asked for (`since`), when the
 * peer can answer that; otherwise its whole index, read at most every few times what a read costs.
 *
 * A ticket that fails is tried again later (1 s, doubling up to 60 s) and never holds up the
 * others. A file replaced or deleted by sync is first linked into DIR/.swarm/trash/ (kept
 * `trashDays`), so nothing a user wrote is lost. What a peer sends is checked entry by entry; a
 * peer's index is a claim like any other: the content is fetched by content id and every chunk
 * checked against it.
 */
import { EventEmitter } from 'node:events';
import { link, mkdir, rename, readdir, stat, unlink } from 'node:fs/promises';
import type { FileInfo } from '../types.js';
import path from 'node:path';
import { PeerClient } from '../peer/client.js';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { MAX_MTIME_SEC, MAX_FILE_BYTES, STATE_DIR_NAME } from '../constants.js';
import { isContentId } from '../hashing.js';
import { nameProblem } from '../protocol/names.js';
import { trackerDirectory } from '../tracker/client.js';
import type { SwarmNode } from '../node/node.js';
import type { PeerAddress } from '../types.js';
import { SyncIndex } from './index-store.js';
import { conflictName, decide, newerWins, type SyncEntry } from './plan.js';
import { Lander, Pipe, isSmall, type Staged } from './small.js';

export interface SyncOptions {
  /** Do not propagate deletions (and never delete here because a peer did). */
  noDelete?: boolean;
  /** Days replaced and deleted files stay in DIR/.swarm/trash/ (default 30). */
  trashDays?: number;
  /** Big files (more than one chunk) fetched at once (default 4); small files go pipelined, in batches. */
  parallel?: number;
  /** How often every peer's index is read again, besides news (default 10 s). */
  pullMs?: number;
}

export interface SyncEvents {
  fetched: [e: { name: string; size: number; from: number }];
  deleted: [e: { name: string }];
  conflict: [e: { name: string; copy: string }];
  warning: [message: string];
  /** Nothing left to do with what is known now. */
  idle: [e: { files: number; pending: number }];
}

interface Ticket {
  name: string;
  remote: SyncEntry;
  holders: PeerAddress[];
  conflict: boolean;
  attempts: number;
  notBefore: number;
  /** Being worked on (fetched, landed, deleted). */
  started: boolean;
}

/** A watched peer: its connection (index, news, small files) and what we read of its index. */
interface Watch {
  client: PeerClient;
  pipe: Pipe;
  /** The index version our last read ended at (per connection: a version is per process). */
  version: number | null;
  watching?: boolean;
}

const RETRY_FIRST_MS = 1_000;
/** Tries a one-shot sync (`--once`, syncOnce) gives a file before it reports it as not fetched. */
const ONCE_ATTEMPTS = 3;
const RETRY_MAX_MS = 60_000;
const MAX_ENTRIES_PER_PEER = 1_000_000;
const MAX_PAGES = 1_000;
/** A local file whose mtime is younger than this is announced once its stat held still this long. */
export const STABLE_MS = 300;
/** Small files in flight (fetched, or waiting for their batch) at most. */
const SMALL_WINDOW = 512;
/** A batch lands when it holds this many files or bytes, or when nothing more is coming. */
const BATCH_FILES = 256;
const BATCH_BYTES = 16 << 20;
/** ...or at the latest this long after its first file was verified. */
const BATCH_MAX_WAIT_MS = 150;
/** The trash is looked through for expired files at most this often. */
const TRASH_SWEEP_MS = 60_000;

const key = (a: PeerAddress) => `${a.ip}|${a.port}`;

export class Syncer extends EventEmitter<SyncEvents> {
  readonly index: SyncIndex;
  private readonly watchers = new Map<string, Watch>();
  /** The last index seen from each peer. */
  private readonly remote = new Map<string, { addr: PeerAddress; entries: Map<string, SyncEntry> }>();
  private readonly tickets = new Map<string, Ticket>();
  private running = 0;
  private pullTimer: NodeJS.Timeout | null = null;
  private readonly pulling = new Map<string, Promise<void>>();
  private closed = false;
  private readonly parallel: number;
  /** Tickets in the order they are worked on (oldest first); null: to be sorted again. */
  private order: Ticket[] | null = null;
  private readonly lander: Lander;
  /** Small files being fetched or waiting for their batch. */
  private smallActive = 0;
  private staged: Staged[] = [];
  private stagedBytes = 0;
  private stagedTickets = new Map<string, Ticket>();
  private batchTimer: NodeJS.Timeout | null = null;
  private landing: Promise<void> = Promise.resolve();
  /** Files in the batch landing now. */
  private landingCount = 0;
  /** Local files waiting to be seen stable before the index follows them. */
  private readonly settling = new Map<string, NodeJS.Timeout>();
  private lastSweep = 0;

  constructor(
    private readonly node: SwarmNode,
    private readonly o: SyncOptions = {},
  ) {
    super();
    if (!node.library || !node.server) throw new SwarmError(ERROR_CODES.USAGE, 'sync needs a node that shares a folder and listens');
    this.index = new SyncIndex(node.library.root, o.trashDays ?? 30);
    this.parallel = o.parallel ?? 4;
    this.lander = new Lander(node.library.root);
  }

  async start(): Promise<void> {
    const lib = this.node.library!;
    await this.index.load();
    await this.lander.clearTemps();
    this.follow(lib.files(), null);
    lib.on('change', (diff) => {
      const files: FileInfo[] = [];
      for (const n of [...diff.added, ...diff.changed]) {
        const f = lib.stat(n);
        if (f) files.push(f);
      }
      this.follow(files, diff.removed);
    });
    const idx = this.index;
    this.node.server!.sync = {
      page: (after, since) => idx.page(after, since),
      get version() {
        return idx.version;
      },
      onChange: (fn) => idx.onChange(fn),
      // a syncing peer that found us first: read its index too (both ways, at once)
      // (every peer is read again then, not only it: a plan from one peer's index alone would
      // fetch from fewer holders, or a version another peer has already replaced)
      watchedBy: (a) => {
        if (!this.closed && !this.remote.has(key(a)) && !this.pulling.has(key(a))) this.fullSoon();
      },
    };
    await this.index.save();
    this.pullTimer = setInterval(() => void this.pullAll(), this.o.pullMs ?? 10_000);
    this.pullTimer.unref();
  }

  /**
   * The index follows the share: files (all of them when `removed` is null, at start) and
   * removals. A file modified in the last STABLE_MS may still be being written: it waits until its
   * stat held still that long (then the library's version is the file's).
   */
  private follow(files: FileInfo[], removed: string[] | null): void {
    const lib = this.node.library!;
    const now = Date.now();
    const ready: FileInfo[] = [];
    for (const f of files) {
      const st = lib.statOf(f.name);
      const e = this.index.get(f.name);
      if (e && e.deleted === undefined && e.cid === f.cid && e.mtime === f.mtime) continue;
      if (st && (now - st.mtimeMs < STABLE_MS || now < st.mtimeMs)) this.settle(f.name, st.mtimeMs);
      else ready.push(f);
    }
    // (at start, a file still settling is not taken for deleted: it exists)
    if (removed === null) this.index.follow(ready, null);
    else this.index.followSome(ready, removed);
    this.index.saveSoon();
  }

  /** Look at `name` again once STABLE_MS passed without its stat moving; follow it then. */
  private settle(name: string, mtimeMs: number): void {
    const old = this.settling.get(name);
    if (old) clearTimeout(old);
    const wait = Math.max(STABLE_MS, mtimeMs - Date.now() + STABLE_MS);
    const t = setTimeout(() => {
      this.settling.delete(name);
      if (this.closed) return;
      const lib = this.node.library!;
      const known = lib.statOf(name);
      const f = lib.stat(name);
      if (!known || !f) return; // gone meanwhile: the library says so
      void stat(path.join(lib.root, ...name.split('/')))
        .then((now) => {
          if (this.closed) return;
          // still what the library hashed, for STABLE_MS: stable. Otherwise the library hashes the
          // new version (its watch, or its next walk) and we come back here with it
          if (now.size === known.size && now.mtimeMs === known.mtimeMs && now.ino === known.ino && Date.now() - now.mtimeMs >= STABLE_MS) {
            if (lib.stat(name)?.cid === f.cid) {
              this.index.followSome([f], []);
              this.index.saveSoon();
            }
          } else if (Date.now() - now.mtimeMs < STABLE_MS) this.settle(name, now.mtimeMs);
        })
        .catch(() => {});
    }, Math.min(wait, 60_000));
    t.unref();
    this.settling.set(name, t);
  }

  /** Every peer this node knows of that may sync: the tracker's holders and the peer book. */
  private async peers(): Promise<PeerAddress[]> {
    const out = new Map<string, PeerAddress>();
    for (const k of this.node.book.list()) out.set(key(k), { ip: k.ip, port: k.port });
    const tracker = this.node.trackerAddress();
    if (tracker) {
      try {
        const { entries } = await trackerDirectory(tracker);
        for (const [, e] of entries) for (const h of [...e.holders, ...e.partial]) out.set(key(h), h);
      } catch (err) {
        if (this.node.book.size === 0) this.emit('warning', `tracker ${tracker}: ${(err as Error).message}`);
      }
    }
    const self = new Set([`${this.node.host}|${this.node.port}`, `127.0.0.1|${this.node.port}`]);
    return [...out.values()].filter((a) => !self.has(key(a)));
  }

  /** Read every peer's index, plan, and run the tickets; resolves when none is left that can run now. */
  async syncOnce(): Promise<{ pending: number }> {
    // local files still being written are announced once they hold still (at most a few seconds)
    for (let i = 0; i < 200 && this.settling.size > 0 && !this.closed; i++) await new Promise((r) => setTimeout(r, 25));
    await this.pullAll();
    await this.drain();
    return { pending: this.tickets.size };
  }

  private allPull: Promise<void> | null = null;

  /** Every peer's index, then plan and run: news that comes meanwhile waits for it (whole picture first). */
  private pullAll(): Promise<void> {
    this.allPull ??= (async () => {
      if (this.closed) return;
      const peers = await this.peers();
      await Promise.all(peers.map((a) => this.pull(a)));
      this.planNames = 'all';
      this.plan();
      this.pump();
    })().finally(() => (this.allPull = null));
    return this.allPull;
  }

  /** The peers whose last index says they have `cid` (read when a ticket starts: the latest word). */
  private holdersOf(name: string, cid: string): PeerAddress[] {
    const out: PeerAddress[] = [];
    for (const r of this.remote.values()) {
      const e = r.entries.get(name);
      if (e && e.deleted === undefined && e.cid === cid) out.push(r.addr);
    }
    return out;
  }

  /** One peer's whole index (pages), and a watch for its news. Joins a pull already running. */
  private pull(a: PeerAddress): Promise<void> {
    const k = key(a);
    const running = this.pulling.get(k);
    if (running) return running;
    const p = this.pullNow(a).finally(() => this.pulling.delete(k));
    this.pulling.set(k, p);
    return p;
  }

  private async pullNow(a: PeerAddress): Promise<void> {
    const k = key(a);
    let w = this.watchers.get(k);
    if (!w || !w.client.connected) {
      let pipe: Pipe | null = null;
      const fresh: PeerClient = new PeerClient(a.ip, a.port, {
        hello: this.node.hello,
        timeoutMs: 5_000,
        handler: {
          onPacket: (h, _raw, payload) => {
            if (!pipe?.onPacket(h, payload)) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'a data packet for no request');
          },
          onMessage: (m) => {
            if (m.t === 'sync-news') this.onNews(a);
            else pipe?.onMessage(m as { t: string; id?: number });
          },
          onClose: (err) => {
            pipe?.close(err);
            if (this.watchers.get(k)?.client === fresh) this.watchers.delete(k);
          },
        },
      });
      pipe = new Pipe(fresh);
      try {
        await fresh.connect();
      } catch {
        fresh.destroy();
        this.remote.delete(k);
        return;
      }
      if (fresh.remoteHello?.peer === this.node.peerId) {
        fresh.destroy();
        return;
      }
      w = { client: fresh, pipe, version: null };
      this.watchers.set(k, w);
    }
    const c = w.client;
    // what changed since our last read of this connection, when the peer can tell (a reply with
    // `version`); else (an older peer, or the first read) the whole index
    const since = w.version !== null && this.remote.has(k) ? w.version : null;
    const entries = since !== null ? new Map(this.remote.get(k)!.entries) : new Map<string, SyncEntry>();
    const changed: string[] = [];
    let after: string | undefined;
    let version: number | null = null;
    const t0 = Date.now();
    try {
      for (let page = 0; page < MAX_PAGES; page++) {
        const { message } = await c.request({ t: 'sync-index', ...(after !== undefined ? { after } : {}), ...(since !== null ? { since } : {}) }, 'sync-entries', 15_000);
        if (page === 0 && since !== null && message.version === undefined) entries.clear(); // it sent the whole index
        if (page === 0) version = message.version ?? null;
        for (const raw of message.entries) {
          const e = checkEntry(raw);
          if (e && (entries.size < MAX_ENTRIES_PER_PEER || entries.has(e.name))) {
            entries.set(e.name, e);
            changed.push(e.name);
          }
        }
        if (message.next === undefined || (after !== undefined && message.next <= after)) break;
        after = message.next;
      }
    } catch (err) {
      // a plain `swarm serve` has no sync index: nothing to learn there (its files come through the tracker)
      if ((err as SwarmError).code !== ERROR_CODES.NOT_FOUND) this.emit('warning', `${a.ip}:${a.port}: ${(err as Error).message}`);
      this.watchers.delete(k);
      c.destroy();
      return;
    }
    this.pullMs.set(k, Date.now() - t0);
    w.version = version;
    const whole = since === null || version === null;
    this.remote.set(k, { addr: a, entries });
    this.planNames = whole || this.planNames === 'all' ? 'all' : new Set([...(this.planNames ?? []), ...changed]);
    if (!w.watching) {
      w.watching = true;
      c.write({ t: 'sync-watch' });
    }
  }

  /** How long the last read of each peer's index took: news waits a multiple of it. */
  private readonly pullMs = new Map<string, number>();
  /** Names to plan again (learnt since the last plan); 'all' after a whole index was read. */
  private planNames: Set<string> | 'all' | null = null;

  private newsTimers = new Map<string, NodeJS.Timeout>();
  private fullTimer: NodeJS.Timeout | null = null;

  /** Read every peer's index again, soon (one read for a burst of reasons). */
  private fullSoon(): void {
    if (this.closed || this.fullTimer) return;
    this.fullTimer = setTimeout(() => {
      this.fullTimer = null;
      void this.pullAll();
    }, 50);
    this.fullTimer.unref();
  }

  private onNews(a: PeerAddress): void {
    if (this.closed || this.newsTimers.has(key(a))) return;
    // a peer busy landing files changes its index all the time: reading its whole index after
    // every change would cost more than the files (reads `since` a version are cheap)
    const w = this.watchers.get(key(a));
    const cost = w?.version !== null && w?.version !== undefined ? 0 : (this.pullMs.get(key(a)) ?? 0);
    const t = setTimeout(() => {
      this.newsTimers.delete(key(a));
      void (this.allPull ?? Promise.resolve())
        .then(() => this.pull(a))
        .then(() => {
          this.plan();
          this.pump();
        });
    }, Math.max(50, Math.min(5_000, cost * 4)));
    t.unref();
    this.newsTimers.set(key(a), t);
  }

  /** Decide, for every name any peer mentions, what to do here; queue tickets. */
  private plan(): void {
    const which = this.planNames;
    this.planNames = null;
    if (which === null) return;
    let names: Set<string>;
    if (which === 'all') {
      names = new Set<string>();
      for (const r of this.remote.values()) for (const n of r.entries.keys()) names.add(n);
    } else names = which;
    for (const name of names) {
      if (this.index.busy.has(name)) continue;
      // the peers' entries, merged: the newest live version (same rule as conflicts), else the latest deletion
      let best: SyncEntry | undefined;
      const holders = new Map<string, PeerAddress[]>();
      for (const r of this.remote.values()) {
        const e = r.entries.get(name);
        if (!e) continue;
        if (e.deleted === undefined) {
          const list = holders.get(e.cid) ?? [];
          list.push(r.addr);
          holders.set(e.cid, list);
        }
        if (!best) best = e;
        else if (best.deleted !== undefined && e.deleted === undefined) best = e.mtime > best.deleted || best.cid !== e.cid ? e : best;
        else if (best.deleted === undefined && e.deleted === undefined) best = newerWins(e, best) === 'a' ? e : best;
        else if (best.deleted !== undefined && e.deleted !== undefined && e.deleted > best.deleted) best = e;
      }
      if (!best) continue;
      const local = this.index.get(name);
      const action = decide(local, best);
      switch (action.do) {
        case 'agree':
          this.index.agree(name, action.cid);
          break;
        case 'fetch':
        case 'conflict':
          if (action.do === 'conflict' && action.ours === 'wins') break; // they will take ours
          this.ticket(name, action.remote, holders.get(action.remote.cid) ?? [], action.do === 'conflict');
          break;
        case 'delete':
          if (!this.o.noDelete) this.ticket(name, action.tombstone, [], false);
          break;
        case 'remember-deletion':
          if (!this.o.noDelete) this.index.rememberDeletion(action.tombstone);
          break;
      }
    }
    this.index.saveSoon();
  }

  private ticket(name: string, remote: SyncEntry, holders: PeerAddress[], conflict: boolean): void {
    const old = this.tickets.get(name);
    if (old && old.remote.cid === remote.cid && old.remote.deleted === remote.deleted) {
      old.holders = holders;
      return;
    }
    if (old?.started) return; // the running one finishes first; the next plan sees what it left
    this.tickets.set(name, { name, remote, holders, conflict, attempts: 0, notBefore: 0, started: false });
    this.order = null;
  }

  /**
   * Start tickets while there is room: oldest first (seed 000's queue); failing ones wait their
   * turn. Small files (one chunk) go to the pipelined batches (SMALL_WINDOW at once) when a peer
   * that has them is connected; the others take one of `parallel` download slots.
   */
  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    this.order ??= [...this.tickets.values()].sort((a, b) => a.remote.mtime - b.remote.mtime);
    let next = Infinity;
    let stale = 0;
    for (const t of this.order) {
      if (this.tickets.get(t.name) !== t) {
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
      const pipe = t.remote.deleted === undefined && isSmall(t.remote.size) ? this.pipeFor(t) : null;
      if (pipe) {
        if (this.smallActive >= SMALL_WINDOW) continue;
        this.smallActive++;
        this.begin(t);
        void this.fetchSmall(t, pipe);
        continue;
      }
      if (this.running >= this.parallel) continue;
      this.running++;
      this.begin(t);
      void this.work(t).finally(() => this.end(t, () => this.running--));
    }
    // finished tickets are dropped from the order once they are the most of it
    if (stale > 64 && stale * 2 > this.order.length) this.order = this.order.filter((t) => this.tickets.get(t.name) === t);
    // a ticket waiting for its retry time is looked at again then
    if (next !== Infinity) setTimeout(() => this.pump(), next - now + 5).unref();
  }

  private begin(t: Ticket): void {
    t.started = true;
    this.index.busy.add(t.name);
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
    if (this.running === 0 && this.smallActive === 0) this.emit('idle', { files: this.node.library!.files().length, pending: this.tickets.size });
  }

  /** The least loaded open connection to a peer that has the ticket's version. */
  private pipeFor(t: Ticket): Pipe | null {
    let best: Pipe | null = null;
    for (const a of this.holdersOf(t.name, t.remote.cid)) {
      const w = this.watchers.get(key(a));
      if (w?.pipe.open && (!best || w.pipe.load < best.load)) best = w.pipe;
    }
    return best;
  }

  /**
   * Resolves when every ticket is done, or has failed ONCE_ATTEMPTS times (a peer that changed
   * its folder meanwhile, or was busy, usually answers the second time).
   */
  private async drain(): Promise<void> {
    for (;;) {
      this.pump();
      let open = 0;
      for (const t of this.tickets.values()) if (t.attempts < ONCE_ATTEMPTS) open++;
      if (this.running === 0 && this.smallActive === 0 && open === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** What sync does with the version a fetched file replaces, just before it lands. */
  private async replacing(t: Ticket): Promise<void> {
    const root = this.node.library!.root;
    const file = path.join(root, ...t.name.split('/'));
    const local = this.index.get(t.name);
    if (t.conflict && local && local.deleted === undefined) {
      // ours lost: it stays, under the conflict name (a new file every peer will fetch)
      const copy = conflictName(t.name, local.mtime, this.node.peerId);
      await rename(file, path.join(root, ...copy.split('/')));
      this.emit('conflict', { name: t.name, copy });
    } else if (local && local.deleted === undefined) {
      await this.toTrash(t.name, file, true);
    }
  }

  private failed(t: Ticket, err: unknown): void {
    const e = asSwarmError(err);
    t.attempts++;
    t.notBefore = Date.now() + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (t.attempts - 1));
    this.emit('warning', `${t.name}: ${e.message} (trying again in ${Math.round((t.notBefore - Date.now()) / 1000)} s)`);
  }

  /** A small file: fetched and verified on the pipe, written to a temp file, then into a batch. */
  private async fetchSmall(t: Ticket, pipe: Pipe): Promise<void> {
    try {
      const { data, manifest } = await pipe.fetch(t.remote.cid, t.remote.size);
      if (this.closed) throw new SwarmError(ERROR_CODES.PEER_CLOSED, 'sync stopped');
      const staged = await this.lander.stage(t.name, data, manifest, t.remote.mtime, () => this.replacing(t));
      this.staged.push(staged);
      this.stagedBytes += data.length;
      this.stagedTickets.set(t.name, t);
      this.batchSoon();
    } catch (err) {
      this.failed(t, err);
      this.end(t, () => this.smallActive--);
      if (this.staged.length) this.batchSoon();
    }
  }

  /** Land the staged files when the batch is full, when nothing more is coming, or soon anyway. */
  private batchSoon(): void {
    const fetching = this.smallActive - this.staged.length - this.landingCount;
    if (this.staged.length >= BATCH_FILES || this.stagedBytes >= BATCH_BYTES || fetching <= 0) {
      this.landBatch();
      return;
    }
    this.batchTimer ??= setTimeout(() => this.landBatch(), BATCH_MAX_WAIT_MS);
  }

  private landBatch(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    if (this.staged.length === 0) return;
    const batch = this.staged;
    const tickets = this.stagedTickets;
    this.staged = [];
    this.stagedBytes = 0;
    this.stagedTickets = new Map();
    // one batch lands at a time; the next one fills meanwhile
    this.landingCount += batch.length;
    this.landing = this.landing.then(async () => {
      const lib = this.node.library!;
      try {
        const { landed, failed } = await this.lander.commit(batch, (l) => lib.landing(l.name, l.st));
        for (const l of landed) this.index.fetched(l.name, l.manifest.cid, tickets.get(l.name)!.remote.mtime, l.manifest.size);
        // served before it is announced: the library takes them as they are (no rescan, no hash)
        lib.adoptMany(landed);
        for (const l of landed) {
          const t = tickets.get(l.name)!;
          this.tickets.delete(t.name);
          this.emit('fetched', { name: t.name, size: l.manifest.size, from: 1 });
        }
        for (const f of failed) this.failed(tickets.get(f.name)!, f.err);
      } catch (err) {
        for (const t of tickets.values()) if (this.tickets.get(t.name) === t) this.failed(t, err);
      } finally {
        this.landingCount -= batch.length;
      }
      this.end([...tickets.values()], () => this.smallActive--);
      // files verified meanwhile wait for nothing more if nothing else is coming
      if (this.staged.length) this.batchSoon();
    });
  }

  private async work(t: Ticket): Promise<void> {
    const root = this.node.library!.root;
    try {
      if (t.remote.deleted !== undefined) {
        await this.toTrash(t.name, path.join(root, ...t.name.split('/')), false);
        this.index.rememberDeletion(t.remote);
        this.tickets.delete(t.name);
        this.emit('deleted', { name: t.name });
        return;
      }
      const now = this.holdersOf(t.name, t.remote.cid);
      if (now.length) t.holders = now;
      if (t.holders.length === 0) throw new SwarmError(ERROR_CODES.NO_PEERS, 'no peer holds it now');
      await this.replacing(t);
      // by content id from the peers whose index has it: a peer whose folder changed since it
      // was read still serves the version it announced for as long as it has it
      const p = this.node.get(t.name, {
        outDir: root,
        known: { cid: t.remote.cid, size: t.remote.size, mtime: t.remote.mtime, holders: t.holders, partial: [] },
        overwrite: true,
        peerThreads: 0,
      });
      p.download.on('peer-dropped', (e) => this.emit('warning', `${t.name}: dropped ${e.peer}: ${e.reason}`));
      const r = await p;
      // served before it is announced: the index says we have it only once the library does.
      // The node adopted it as it landed (no rescan); a rescan is only the fallback.
      const lib = this.node.library!;
      if (lib.stat(t.name)?.cid !== r.cid) await lib.refresh().catch(() => {});
      this.index.fetched(t.name, r.cid, t.remote.mtime, r.size);
      this.tickets.delete(t.name);
      this.emit('fetched', { name: t.name, size: r.size, from: t.holders.length });
    } catch (err) {
      this.failed(t, err);
    }
  }

  /** Keep what sync replaces or deletes: linked (or moved) into DIR/.swarm/trash/. */
  private async toTrash(name: string, file: string, keepInPlace: boolean): Promise<void> {
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) return;
    const trash = path.join(this.node.library!.root, STATE_DIR_NAME, 'trash');
    await mkdir(trash, { recursive: true });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const dest = path.join(trash, `${stamp}-${name.replace(/\//g, '__')}`);
    if (keepInPlace) await link(file, dest).catch(() => {});
    else await rename(file, dest);
    if (Date.now() - this.lastSweep > TRASH_SWEEP_MS) {
      this.lastSweep = Date.now();
      await this.emptyTrash(trash);
    }
  }

  private async emptyTrash(trash: string): Promise<void> {
    const before = Date.now() - (this.o.trashDays ?? 30) * 86_400_000;
    for (const f of await readdir(trash).catch(() => [] as string[])) {
      const p = path.join(trash, f);
      const st = await stat(p).catch(() => null);
      if (st && st.ctimeMs < before) await unlink(p).catch(() => {});
    }
  }

  /** Tickets not done yet (waiting, running or to be retried). */
  get pending(): number {
    return this.tickets.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pullTimer) clearInterval(this.pullTimer);
    for (const t of this.newsTimers.values()) clearTimeout(t);
    for (const t of this.settling.values()) clearTimeout(t);
    this.settling.clear();
    if (this.fullTimer) clearTimeout(this.fullTimer);
    for (const w of this.watchers.values()) w.client.destroy();
    this.watchers.clear();
    // what was verified lands (it is durable once it does); then the state is written
    this.landBatch();
    await this.landing.catch(() => {});
    await this.index.save();
    await this.node.library?.flush();
  }
}

/** One index entry from a peer, checked field by field (null: left out). */
function checkEntry(raw: unknown): SyncEntry | null {
  const e = raw as Record<string, unknown> | null;
  if (!e || typeof e !== 'object') return null;
  if (nameProblem(e.name) !== null || !isContentId(e.cid)) return null;
  const uint = (v: unknown, max: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;
  if (!uint(e.mtime, MAX_MTIME_SEC) || !uint(e.size, MAX_FILE_BYTES)) return null;
  if (e.deleted !== undefined && !uint(e.deleted, MAX_MTIME_SEC)) return null;
  if (e.agreed !== undefined && !isContentId(e.agreed)) return null;
  return {
    name: e.name as string,
    cid: e.cid as string,
    mtime: e.mtime as number,
    size: e.size as number,
    ...(e.deleted !== undefined ? { deleted: e.deleted as number } : {}),
    ...(e.agreed !== undefined ? { agreed: e.agreed as string } : {}),
  };
}
