/**
 * The reading side of sync: which peers are sync peers, one connection to each (its index, its
 * news, the small files fetched over it: small.ts), and the last index read from each.
 *
 *   tracker directory holders (directory-peers.ts) + peer book ─► peers(): at most 64 a round,
 *     the named, those that read us and the members read before first, the rest drawn at random,
 *     none that did not answer or is no member for a while (dial-plan.ts) ─► 16 dials at once
 *     └► per peer, one connection: hello ─► proof of the folder key (membership.ts; none when
 *        open) ─► `sync-index` pages (every page's tag checked) ─► remote entries ─► `sync-watch`
 *        news ─► read again (`since` the version read last, when the peer can tell)
 *
 * A peer that cannot prove the key is never read: no entry of it reaches the plan, and it is
 * told of once (a warning), not at every poll. Stock seed-002 peers (the directory lists their
 * files as "legacy:MTIME") are not dialled as sync peers; an open folder takes their files from the
 * directory's word, a keyed one never. What a member sends is checked entry by entry; an
 * index is a claim like any other: content is fetched by content id and every chunk checked.
 */
import { PeerClient } from '../peer/client.js';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { trackerDirectory } from '../tracker/client.js';
import type { SwarmNode } from '../node/node.js';
import type { PeerAddress } from '../types.js';
import type { FolderKey } from './folder-key.js';
import { pageMac, proveToServer, sameTag } from './membership.js';
import type { SyncEntry } from './plan.js';
import { checkEntry } from './check-entry.js';
import { readDirectory } from './directory-peers.js';
import { DialRounds, DIALS_AT_ONCE, eachLimited } from './dial-plan.js';
import { leastLoaded, Pipe } from './small.js';
import { arena } from '../protocol/checksum-wasm.js';
import { READ_BUFFER_BYTES } from '../net/framed-client.js';

const MAX_ENTRIES_PER_PEER = 1_000_000;
/** Pages read of one index at most (a page holds up to 1,000 entries, fewer when names are long). */
const MAX_PAGES = 5_000;
/**
 * A page that says more follow holds at least this many entries: a swarm page stops early only at
 * ~384 KiB of JSON, which even names of 4 KiB fill with ~45 (hostile review 41: pages of no entry
 * with an ever-longer `next` made 5,000 round trips per read).
 */
const MIN_ENTRIES_WITH_NEXT = 16;
/** A sync peer says hello within this long of the connection, or is taken for no sync peer. */
const HELLO_WAIT_MS = 3_000;
/**
 * The first page from a drawn peer (never read, not named, has not read us), at most; every other
 * page has 15 s. One that says hello and then nothing held a dial 15 s (hostile review 57; keyed,
 * the proof has 5 s). A member on a link too slow for it is read once it reads us.
 */
const FIRST_PAGE_WAIT_MS = 5_000;
/** One whole read of a peer's index at most (each page also has its own 15 s). */
const PULL_DEADLINE_MS = 180_000;
/** Peers told of as refused (each once); forgotten all at once beyond this. */
const MAX_REFUSED = 1_024;

/** A watched peer: its connection (index, news, small files) and what we read of its index. */
interface Watch {
  client: PeerClient;
  pipe: Pipe;
  /** The index version our last read ended at (per connection: a version is per process). */
  version: number | null;
  watching?: boolean;
  /** This connection's tag key (null: an open folder, nothing tagged). */
  session: Buffer | null;
}

/** What one peer holds, as last read: a member's index, or a stock peer's directory entries. */
export interface RemoteIndex {
  addr: PeerAddress;
  entries: Map<string, SyncEntry>;
  stock?: true;
}

export const peerKey = (a: PeerAddress) => `${a.ip}|${a.port}`;

export interface ReaderHost {
  readonly node: SwarmNode;
  /** The folder key (null: open, every peer is read). */
  readonly key: FolderKey | null;
  closed(): boolean;
  warn(message: string, info?: { code?: string; peer?: string; tracker?: string }): void;
  /** An index was read: the names to plan again ('all': a whole index). */
  read(changed: string[] | 'all'): void;
  /** Every peer's index was read (a full round): plan and run. */
  readAll(): void;
  /** A watched peer's news was read: plan and run what it changed. */
  newsRead(): void;
}

export class IndexReaders {
  private readonly watchers = new Map<string, Watch>();
  /** Every connection open or opening (close() ends them all, the ones still dialling too). */
  private readonly clients = new Set<PeerClient>();
  /**
   * The last index seen from each peer (members only), and, in an open folder, what stock
   * seed-002 peers hold according to the tracker's directory (`stock`: entries "legacy:MTIME").
   */
  readonly remote = new Map<string, RemoteIndex>();
  private readonly pulling = new Map<string, Promise<void>>();
  /** How long the last read of each peer's index took: news waits a multiple of it. */
  private readonly pullMs = new Map<string, number>();
  private readonly newsTimers = new Map<string, NodeJS.Timeout>();
  private fullTimer: NodeJS.Timeout | null = null;
  private allPull: Promise<void> | null = null;
  /** The first part of the round running (the named and known members), which news waits for. */
  private knownPull: Promise<void> | null = null;
  /** The round running has read its known peers and dials its drawn ones. */
  private drawing = false;
  /** Indexes read so far (a round's drawn peers change the plan only when one was). */
  private reads = 0;
  /** Peers already told of as refused (address and reason). */
  private readonly refused = new Set<string>();
  /** Peers refused since this process started (a count that is never cleared: `--once` reports it). */
  refusedCount = 0;
  /** Which peers each round dials, and which wait (dial-plan.ts). */
  readonly rounds = new DialRounds<PeerAddress>(peerKey);

  constructor(private readonly host: ReaderHost) {}

  /** Every peer this node knows of that may sync: the tracker's holders and the peer book. */
  private async peers(): Promise<{ known: PeerAddress[]; drawn: PeerAddress[] }> {
    const node = this.host.node;
    const book = node.book.neighbours(Infinity).map((k) => ({ addr: { ip: k.ip, port: k.port }, named: k.sources.includes('neighbor') }));
    let listed: PeerAddress[] = [];
    const tracker = node.trackerAddress();
    if (tracker) {
      try {
        const read = readDirectory((await trackerDirectory(tracker)).entries, !!this.host.key, peerKey);
        listed = read.listed; // (not spread: a directory can list more holders than a call takes arguments)
        const stock = read.stock;
        for (const [k, r] of this.remote) if (r.stock && !stock.has(k)) this.remote.delete(k);
        for (const [k, r] of stock) if (!this.remote.get(k) || this.remote.get(k)!.stock) this.remote.set(k, { ...r, stock: true });
      } catch (err) {
        const m = (err as Error).message;
        if (node.book.size === 0) this.host.warn(m.includes(tracker) ? m : `tracker ${tracker}: ${m}`, { code: asSwarmError(err).code, tracker });
      }
    }
    const self = new Set([`${node.host}|${node.port}`, `127.0.0.1|${node.port}`]);
    const members = [...this.remote.values()].filter((r) => !r.stock).map((r) => r.addr);
    return this.rounds.plan(book, members, listed, (k) => self.has(k));
  }

  /** Every peer's index (the known ones first: the host plans and runs after them, and news waits for them only), then the drawn ones. */
  pullAll(): Promise<void> {
    this.allPull ??= (async () => {
      if (this.host.closed()) return;
      const { known, drawn } = await this.peers();
      // the named and known members first, and a plan from them; then the drawn ones, which
      // change it only if any answers as a member (news waits for the first part only: onNews)
      const first = (this.knownPull = eachLimited(known, DIALS_AT_ONCE, (a) => this.pull(a)).then(() => this.host.readAll()));
      await first;
      if (!drawn.length || this.host.closed()) return;
      this.drawing = true;
      const reads = this.reads;
      await eachLimited(drawn, DIALS_AT_ONCE, (a) => this.pull(a));
      if (this.reads !== reads) this.host.readAll();
    })().finally(() => {
      this.allPull = this.knownPull = null;
      this.drawing = false;
    });
    return this.allPull;
  }

  /** Read every peer's index again, soon (one read for a burst of reasons). */
  fullSoon(): void {
    if (this.host.closed() || this.fullTimer) return;
    this.fullTimer = setTimeout(() => {
      this.fullTimer = null;
      void this.pullAll();
    }, 50);
    this.fullTimer.unref();
  }

  /**
   * A syncing peer that found us first: read its index too (both ways, at once). Every peer is
   * read again then, not only it: a plan from one peer's index alone would fetch from fewer
   * holders, or a version another peer has already replaced.
   */
  watchedBy(a: PeerAddress): void {
    this.rounds.readUs({ ip: a.ip, port: a.port }, this.remote.has(peerKey(a))); // it proved the key to us
    if (this.host.closed() || this.remote.has(peerKey(a)) || this.pulling.has(peerKey(a))) return;
    // the known ones were just read and the round only dials drawn ones now: read it at once
    if (this.drawing) void this.pull(a).then(() => this.host.newsRead());
    else if (this.allPull) void this.allPull.then(() => this.fullSoon()); // (planned without it: the next one)
    else this.fullSoon();
  }

  /** The peers whose last index says they have `cid` (read when a ticket starts: the latest word). */
  holdersOf(name: string, cid: string): PeerAddress[] {
    const out: PeerAddress[] = [];
    for (const r of this.remote.values()) {
      const e = r.entries.get(name);
      if (e && e.deleted === undefined && e.cid === cid) out.push(r.addr);
    }
    return out;
  }

  /**
   * The least loaded usable connection to a peer that has this version; 'wait' when connections
   * to holders are open but all full or paused (small.ts), null when there is none.
   */
  pipeFor(name: string, cid: string, now = Date.now()): Pipe | 'wait' | null {
    return leastLoaded(this.holdersOf(name, cid).map((a) => this.watchers.get(peerKey(a))?.pipe), now);
  }

  /** One peer's whole index (pages), and a watch for its news. Joins a pull already running. */
  private pull(a: PeerAddress): Promise<void> {
    if (this.host.closed()) return Promise.resolve(); // (a round's later dials, after close())
    const k = peerKey(a);
    const running = this.pulling.get(k);
    if (running) return running;
    const p = this.pullNow(a).finally(() => this.pulling.delete(k));
    this.pulling.set(k, p);
    return p;
  }

  /** Tell of a refused peer once (per address and reason); it is not read. */
  private refuse(a: PeerAddress, reason: string): void {
    const k = `${peerKey(a)}|${reason}`;
    if (this.refused.has(k)) return;
    if (this.refused.size >= MAX_REFUSED) this.refused.clear();
    this.refused.add(k);
    this.refusedCount++;
    this.host.warn(`${a.ip}:${a.port} is not read (not a member of this folder: ${reason}); members need the same folder key (--key FILE), or all --open`, { code: ERROR_CODES.SYNC_DENIED, peer: `${a.ip}:${a.port}` });
  }

  /** A connection to the peer, proved (keyed folder) and kept: null when it is not one to read. */
  private async connect(a: PeerAddress): Promise<Watch | null> {
    const k = peerKey(a);
    const node = this.host.node;
    let pipe: Pipe | null = null;
    const readArena = arena(READ_BUFFER_BYTES);
    const fresh: PeerClient = new PeerClient(a.ip, a.port, {
      hello: node.hello,
      timeoutMs: 5_000,
      // streaming: one reused read buffer in wasm memory, where packets are summed (small.ts)
      ...(readArena ? { readBuffer: readArena.bytes } : {}),
      handler: {
        // (`pipe` is set below, before the connection opens)
        onPacketStart: (h, headerSum) => pipe!.onPacketStart(h, headerSum),
        onPacketData: (h, piece, at) => pipe!.onPacketData(h, piece, at),
        onPacketEnd: (h) => pipe!.onPacketEnd(h),
        onMessage: (m) => {
          if (m.t === 'sync-news') this.onNews(a);
          else pipe?.onMessage(m as { t: string; id?: number });
        },
        onClose: (err) => {
          this.clients.delete(fresh);
          pipe?.close(err);
          if (this.watchers.get(k)?.client === fresh) this.watchers.delete(k);
        },
      },
    });
    pipe = new Pipe(fresh, {}, readArena);
    this.clients.add(fresh);
    const named = this.rounds.isNamed(k);
    try {
      await fresh.connect();
      // every sync peer says hello first: an address that says nothing in HELLO_WAIT_MS is none
      // (each silent one held a dial for the index's 15 s time-out)
      if (!(await fresh.helloWithin(HELLO_WAIT_MS))) throw new SwarmError(ERROR_CODES.PEER_TIMEOUT, 'no hello');
    } catch {
      fresh.destroy();
      this.remote.delete(k);
      this.rounds.backoff.failed(k, Date.now(), named);
      return null;
    }
    if (fresh.remoteHello?.peer === node.peerId) {
      fresh.destroy();
      this.rounds.backoff.notMember(k, Date.now());
      return null;
    }
    let session: Buffer | null = null;
    const key = this.host.key;
    if (key) {
      try {
        session = await proveToServer(fresh, key, node.peerId);
      } catch (err) {
        fresh.destroy();
        if (this.host.closed()) return null; // (close() ended it: nothing to tell)
        this.remote.delete(k);
        const e = asSwarmError(err);
        // (NOT_FOUND: a plain serve, or a `swarm sync` whose Syncer is not up yet: it listens first)
        if (e.code === ERROR_CODES.PEER_TIMEOUT || e.code === ERROR_CODES.PEER_CLOSED || e.code === ERROR_CODES.NOT_FOUND) this.rounds.backoff.failed(k, Date.now(), named);
        else this.rounds.backoff.notMember(k, Date.now(), named);
        // a plain `swarm serve` does not sync: nothing to learn there, nothing to say
        if (e.code === ERROR_CODES.NOT_FOUND) return null;
        if (e.code === ERROR_CODES.UNKNOWN_MESSAGE) this.refuse(a, 'it has no folder keys (an older swarm)');
        else if (e.code === ERROR_CODES.SYNC_DENIED) this.refuse(a, e.message);
        else this.refuse(a, `the key's proof failed: ${e.message}`);
        return null;
      }
    }
    if (this.host.closed()) {
      fresh.destroy();
      return null;
    }
    const w: Watch = { client: fresh, pipe, version: null, session };
    this.watchers.set(k, w);
    this.rounds.backoff.cleared(k);
    return w;
  }

  private async pullNow(a: PeerAddress): Promise<void> {
    const k = peerKey(a);
    const readUs = this.rounds.reading(k);
    let w = this.watchers.get(k);
    if (!w || !w.client.connected) {
      const fresh = await this.connect(a);
      if (!fresh) return;
      w = fresh;
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
        const req = { t: 'sync-index', ...(after !== undefined ? { after } : {}), ...(since !== null ? { since } : {}) } as const;
        const drawn = page === 0 && !this.remote.has(k) && !this.rounds.isNamed(k) && !readUs;
        const { message } = await c.request(req, 'sync-entries', drawn ? FIRST_PAGE_WAIT_MS : 15_000);
        // a member's page carries its tag: anything else (changed on the way, or from a relay) is not used
        if (w.session && !sameTag(message.mac, pageMac(w.session, { id: message.id, after, since: since ?? undefined }, message))) {
          throw new SwarmError(ERROR_CODES.SYNC_DENIED, 'an index page without its tag (changed on the way?)');
        }
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
        if (message.entries.length < MIN_ENTRIES_WITH_NEXT) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `an index page of ${message.entries.length} entries that says more follow`);
        if (page === MAX_PAGES - 1) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `an index of more than ${MAX_PAGES} pages`);
        if (Date.now() - t0 > PULL_DEADLINE_MS) throw new SwarmError(ERROR_CODES.PEER_TIMEOUT, `its index took over ${PULL_DEADLINE_MS / 1000} s to read`);
        after = message.next;
      }
    } catch (err) {
      if (this.host.closed()) return void c.destroy(); // (close() ended it: nothing to tell)
      const e = asSwarmError(err);
      if (e.code === ERROR_CODES.SYNC_DENIED) this.rounds.backoff.notMember(k, Date.now(), this.rounds.isNamed(k));
      else this.rounds.backoff.failed(k, Date.now(), this.rounds.isNamed(k));
      if (e.code === ERROR_CODES.SYNC_DENIED) {
        this.remote.delete(k);
        this.refuse(a, e.message);
      } else if (e.code !== ERROR_CODES.NOT_FOUND && (c.remoteHello || this.rounds.isNamed(k))) {
        // a plain `swarm serve` has no sync index: nothing to learn there (its files come through
        // the tracker); one that never said a word is no swarm peer, or gone: a listed address of
        // nobody is no warning each round (one the user named is)
        this.host.warn(`${a.ip}:${a.port}: ${e.message}`, { code: e.code, peer: `${a.ip}:${a.port}` });
      }
      this.watchers.delete(k);
      c.destroy();
      return;
    }
    this.pullMs.set(k, Date.now() - t0);
    this.reads++;
    w.version = version;
    const whole = since === null || version === null;
    this.remote.set(k, { addr: a, entries });
    this.host.read(whole ? 'all' : changed);
    if (!w.watching) {
      w.watching = true;
      c.write({ t: 'sync-watch' });
    }
  }

  private onNews(a: PeerAddress): void {
    const k = peerKey(a);
    if (this.host.closed() || this.newsTimers.has(k)) return;
    // a peer busy landing files changes its index all the time: reading its whole index after
    // every change would cost more than the files (reads `since` a version are cheap)
    const w = this.watchers.get(k);
    const cost = w?.version !== null && w?.version !== undefined ? 0 : (this.pullMs.get(k) ?? 0);
    const t = setTimeout(() => {
      this.newsTimers.delete(k);
      void (this.knownPull ?? Promise.resolve())
        .then(() => this.pull(a))
        .then(() => this.host.newsRead());
    }, Math.max(50, Math.min(5_000, cost * 4)));
    t.unref();
    this.newsTimers.set(k, t);
  }

  close(): void {
    for (const t of this.newsTimers.values()) clearTimeout(t);
    if (this.fullTimer) clearTimeout(this.fullTimer);
    for (const c of [...this.clients]) c.destroy();
    this.clients.clear();
    this.watchers.clear();
  }
}
