/**
 * `swarm sync DIR`: keeps a shared folder in step with its peers (seeds 000 and 002).
 *
 *   library change ─► SyncIndex.follow (new, changed, deleted) ─► peers watching hear `sync-news`
 *   peers (tracker directory holders, --neighbor, LAN, DISCOVER) ─► `sync-index` pages, `sync-watch`
 *      └► per name: their entries merged, decide() (plan.ts) ─► tickets, oldest first:
 *           fetch ─► get(name, version, from the peers that have it) into DIR, mtime from them
 *           conflict (we lose) ─► our version renamed to NAME.sync-conflict-…, then fetch
 *           delete ─► to DIR/.swarm/trash/
 *
 * A ticket that fails is tried again later (1 s, doubling up to 60 s) and never holds up the
 * others. A file replaced or deleted by sync is first linked into DIR/.swarm/trash/ (kept
 * `trashDays`), so nothing a user wrote is lost. What a peer sends is checked entry by entry; a
 * peer's index is a claim like any other: the content is fetched by content id and every chunk
 * checked against it.
 */
import { EventEmitter } from 'node:events';
import { link, mkdir, rename, readdir, stat, unlink } from 'node:fs/promises';
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

export interface SyncOptions {
  /** Do not propagate deletions (and never delete here because a peer did). */
  noDelete?: boolean;
  /** Days replaced and deleted files stay in DIR/.swarm/trash/ (default 30). */
  trashDays?: number;
  /** Downloads at once (default 4). */
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
}

const RETRY_FIRST_MS = 1_000;
/** Tries a one-shot sync (`--once`, syncOnce) gives a file before it reports it as not fetched. */
const ONCE_ATTEMPTS = 3;
const RETRY_MAX_MS = 60_000;
const MAX_ENTRIES_PER_PEER = 1_000_000;
const MAX_PAGES = 1_000;

const key = (a: PeerAddress) => `${a.ip}|${a.port}`;

export class Syncer extends EventEmitter<SyncEvents> {
  readonly index: SyncIndex;
  private readonly watchers = new Map<string, PeerClient>();
  /** The last index seen from each peer. */
  private readonly remote = new Map<string, { addr: PeerAddress; entries: Map<string, SyncEntry> }>();
  private readonly tickets = new Map<string, Ticket>();
  private running = 0;
  private pullTimer: NodeJS.Timeout | null = null;
  private readonly pulling = new Map<string, Promise<void>>();
  private closed = false;
  private readonly parallel: number;

  constructor(
    private readonly node: SwarmNode,
    private readonly o: SyncOptions = {},
  ) {
    super();
    if (!node.library || !node.server) throw new SwarmError(ERROR_CODES.USAGE, 'sync needs a node that shares a folder and listens');
    this.index = new SyncIndex(node.library.root, o.trashDays ?? 30);
    this.parallel = o.parallel ?? 4;
  }

  async start(): Promise<void> {
    const lib = this.node.library!;
    await this.index.load();
    this.index.follow(lib.files());
    lib.on('change', (diff) => {
      this.index.follow(lib.files(), diff.removed);
      void this.index.save();
    });
    const idx = this.index;
    this.node.server!.sync = {
      page: (after) => idx.page(after),
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
    let c = this.watchers.get(key(a));
    if (!c || !c.connected) {
      const fresh: PeerClient = new PeerClient(a.ip, a.port, {
        hello: this.node.hello,
        timeoutMs: 5_000,
        handler: {
          onMessage: (m) => {
            if (m.t === 'sync-news') this.onNews(a);
          },
          onClose: () => {
            if (this.watchers.get(key(a)) === fresh) this.watchers.delete(key(a));
          },
        },
      });
      c = fresh;
      try {
        await c.connect();
      } catch {
        c.destroy();
        this.remote.delete(key(a));
        return;
      }
      if (c.remoteHello?.peer === this.node.peerId) {
        c.destroy();
        return;
      }
      this.watchers.set(key(a), c);
    }
    const entries = new Map<string, SyncEntry>();
    let after: string | undefined;
    try {
      for (let page = 0; page < MAX_PAGES; page++) {
        const { message } = await c.request({ t: 'sync-index', ...(after !== undefined ? { after } : {}) }, 'sync-entries', 15_000);
        for (const raw of message.entries) {
          const e = checkEntry(raw);
          if (e && entries.size < MAX_ENTRIES_PER_PEER) entries.set(e.name, e);
        }
        if (message.next === undefined || (after !== undefined && message.next <= after)) break;
        after = message.next;
      }
    } catch (err) {
      // a plain `swarm serve` has no sync index: nothing to learn there (its files come through the tracker)
      if ((err as SwarmError).code !== ERROR_CODES.NOT_FOUND) this.emit('warning', `${a.ip}:${a.port}: ${(err as Error).message}`);
      this.watchers.delete(key(a));
      c.destroy();
      return;
    }
    this.remote.set(key(a), { addr: a, entries });
    c.write({ t: 'sync-watch' });
  }

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
    const t = setTimeout(() => {
      this.newsTimers.delete(key(a));
      void (this.allPull ?? Promise.resolve())
        .then(() => this.pull(a))
        .then(() => {
          this.plan();
          this.pump();
        });
    }, 50);
    t.unref();
    this.newsTimers.set(key(a), t);
  }

  /** Decide, for every name any peer mentions, what to do here; queue tickets. */
  private plan(): void {
    const names = new Set<string>();
    for (const r of this.remote.values()) for (const n of r.entries.keys()) names.add(n);
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
    void this.index.save();
  }

  private ticket(name: string, remote: SyncEntry, holders: PeerAddress[], conflict: boolean): void {
    const old = this.tickets.get(name);
    if (old && old.remote.cid === remote.cid && old.remote.deleted === remote.deleted) {
      old.holders = holders;
      return;
    }
    this.tickets.set(name, { name, remote, holders, conflict, attempts: 0, notBefore: 0 });
  }

  /** Start tickets while there is room: oldest first (seed 000's queue); failing ones wait their turn. */
  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    const ready = [...this.tickets.values()].filter((t) => t.notBefore <= now && !this.index.busy.has(t.name)).sort((a, b) => a.remote.mtime - b.remote.mtime);
    for (const t of ready) {
      if (this.running >= this.parallel) break;
      this.running++;
      this.index.busy.add(t.name);
      void this.work(t).finally(() => {
        this.running--;
        this.index.busy.delete(t.name);
        void this.index.save();
        this.pump();
        if (this.running === 0) this.emit('idle', { files: this.node.library!.files().length, pending: this.tickets.size });
      });
    }
    // a ticket waiting for its retry time is looked at again then
    const next = [...this.tickets.values()].filter((t) => t.notBefore > now).reduce((m, t) => Math.min(m, t.notBefore), Infinity);
    if (next !== Infinity) setTimeout(() => this.pump(), next - now + 5).unref();
  }

  /**
   * Resolves when every ticket is done, or has failed ONCE_ATTEMPTS times (a peer that changed
   * its folder meanwhile, or was busy, usually answers the second time).
   */
  private async drain(): Promise<void> {
    for (;;) {
      this.pump();
      const open = [...this.tickets.values()].filter((t) => t.attempts < ONCE_ATTEMPTS);
      if (this.running === 0 && open.length === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async work(t: Ticket): Promise<void> {
    const root = this.node.library!.root;
    const file = path.join(root, ...t.name.split('/'));
    try {
      if (t.remote.deleted !== undefined) {
        await this.toTrash(t.name, file, false);
        this.index.rememberDeletion(t.remote);
        this.tickets.delete(t.name);
        this.emit('deleted', { name: t.name });
        return;
      }
      const now = this.holdersOf(t.name, t.remote.cid);
      if (now.length) t.holders = now;
      if (t.holders.length === 0) throw new SwarmError(ERROR_CODES.NO_PEERS, 'no peer holds it now');
      const local = this.index.get(t.name);
      if (t.conflict && local && local.deleted === undefined) {
        // ours lost: it stays, under the conflict name (a new file every peer will fetch)
        const copy = conflictName(t.name, local.mtime, this.node.peerId);
        await rename(file, path.join(root, ...copy.split('/')));
        this.emit('conflict', { name: t.name, copy });
      } else if (local && local.deleted === undefined) {
        await this.toTrash(t.name, file, true);
      }
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
      // The node adopted it as it landed (no rescan); a full rescan per file made many small
      // files cost the square of their number, so it is only the fallback.
      const lib = this.node.library!;
      if (lib.stat(t.name)?.cid !== r.cid) await lib.refresh().catch(() => {});
      this.index.fetched(t.name, r.cid, t.remote.mtime, r.size);
      this.tickets.delete(t.name);
      this.emit('fetched', { name: t.name, size: r.size, from: t.holders.length });
    } catch (err) {
      const e = asSwarmError(err);
      t.attempts++;
      t.notBefore = Date.now() + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (t.attempts - 1));
      this.emit('warning', `${t.name}: ${e.message} (trying again in ${Math.round((t.notBefore - Date.now()) / 1000)} s)`);
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
    await this.emptyTrash(trash);
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
    if (this.fullTimer) clearTimeout(this.fullTimer);
    for (const c of this.watchers.values()) c.destroy();
    this.watchers.clear();
    await this.index.save();
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
