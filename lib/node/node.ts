/**
 * One swarm peer: the long-lived runtime that `serve`, `get` (and later `sync` and the shell) are
 * views of. It owns the listener, what it serves (a share's library, downloads in progress and
 * finished), the tracker link, the chunk pool, and the running downloads.
 *
 *   SwarmNode ── PeerServer ◄── peers           (answers from NodeSources: library + downloads)
 *      │     ├─ TrackerLink ──► tracker          (announces complete files and partial downloads)
 *      │     └─ Overlay ◄─► neighbours           (SEARCH / DISCOVER, seed 001; PeerBook, LAN: discovery.ts)
 *      ├── library (a shared folder, optional) ◄── adopts what a download finishes inside it
 *      └── downloads ── Download (download/get.ts) through the DownloadHost interface:
 *             share(partial source) · verified(chunks) · finished(file) · discover(cid)
 *
 * A download is a holder from its first verified chunk: its partial source is served at once,
 * the tracker lists it as a partial holder, and other peers find it (tracker, peer exchange).
 * When it completes, the file is adopted without re-hashing: by the library when it landed in
 * the shared folder, else held as a complete source for as long as the node runs (`--seed`).
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { createChunkPool, type ChunkPool } from '../pool.js';
import { Library, type HashProgress } from '../share/library.js';
import { writeAdoption } from '../share/adopt.js';
import type { ScanDiff, FileStat } from '../share/scanner.js';
import { PeerServer } from '../peer/server.js';
import type { ChunkSource } from '../peer/source.js';
import { noLog, type Log } from '../log.js';
import { attachTracker, type TrackerLink, type TrackerLinkOptions, type TrackerState } from '../tracker/link.js';
import { trackerPeersOf } from '../tracker/client.js';
import type { ServerLimits } from '../net/guard.js';
import { AGENT, newPeerId } from '../net/identity.js';
import type { AnnouncedFile } from '../protocol/entries.js';
import type { HelloFields } from '../protocol/messages.js';
import type { Manifest } from '../manifest.js';
import type { FileInfo, PeerAddress } from '../types.js';
import { DEFAULT_PEER_PORT, STATE_DIR_NAME, defaultTracker } from '../constants.js';
import { get as runGet, type Discovery, type DownloadHost, type GetOptions, type GetPromise } from '../download/get.js';
import { NodeSources } from './sources.js';
import { existsSync } from 'node:fs';
import { ERROR_CODES, SwarmError, asSwarmError, type ErrorCode } from '../errors.js';
import { PeerBook } from '../discovery/peer-book.js';
import { Overlay } from '../discovery/overlay.js';
import { LanDiscovery } from '../discovery/lan.js';
import { resolveAddresses, NodeDiscovery, type LanSettings } from './discovery.js';
import type { VersionFinder } from '../download/resolve.js';

/** What a warning is about, for NDJSON: a stable code, and the file when it is about one. */
export interface NodeWarningInfo {
  code?: ErrorCode;
  name?: string;
}

export interface NodeOptions extends TrackerLinkOptions {
  /** A folder to share (serve); none: the node serves only what it downloads. */
  share?: string;
  /** Listen for peers (default true); false: take only, never share (`get --no-share`). */
  listen?: boolean;
  port?: number;
  host?: string;
  /** Threads of the chunk pool; 0 works on the main thread. */
  threads?: number;
  /** Share an existing chunk pool instead of creating one. */
  pool?: ChunkPool;
  stateDir?: string;
  rescanMs?: number;
  watch?: boolean;
  log?: Log;
  /** Upload limit, bytes per second, for all peers together. */
  maxUploadBytesPerSec?: number;
  /** Connection limits and deadlines of the peer server (net/guard.ts). */
  limits?: Partial<ServerLimits>;
  /** Hashing progress, including the first scan (which finishes before `start` resolves). */
  onHashing?: (p: HashProgress) => void;
  /** Warnings (skipped files and the like), including those of the first scan. */
  onWarning?: (message: string, info?: NodeWarningInfo) => void;
  /** Files inside the share that are not shared nor watched (the node's own log file). */
  ignore?: string[];
  /** Overlay neighbours to start with (`--neighbor host:port`, seed 001). */
  neighbors?: string[];
  /** Announce and listen on the LAN (`--lan`, seed 004); absent: off. */
  lan?: LanSettings;
}

export interface NodeEvents {
  hashing: [p: HashProgress];
  change: [diff: ScanDiff];
  warning: [message: string];
  tracker: [state: TrackerState];
}

/** Tracker asked again for holders of a running download: soon at first, then less often. */
const DISCOVER_FIRST_MS = 1_000;
const DISCOVER_MAX_MS = 10_000;

export class SwarmNode extends EventEmitter<NodeEvents> implements DownloadHost {
  readonly sources = new NodeSources();
  /** Known peers (seed 001's list) and the overlay that floods SEARCH and DISCOVER through them. */
  readonly book = new PeerBook();
  readonly overlay: Overlay;
  /** Peers finding (overlay searches, LAN, DISCOVER) for get, search and peers. */
  readonly discovery: NodeDiscovery;
  lan: LanDiscovery | null = null;
  readonly peerId: string;
  library: Library | null = null;
  server: PeerServer | null = null;
  tracker: TrackerLink | null = null;
  host = '';
  port = 0;
  private readonly log: Log;
  private readonly ownPool: boolean;
  readonly pool: ChunkPool;
  private readonly heldChanged = new Set<(changed: AnnouncedFile[], removed: string[]) => void>();
  private readonly downloads = new Set<GetPromise>();
  private closed = false;

  private constructor(private readonly opts: NodeOptions) {
    super();
    this.log = opts.log ?? noLog;
    this.pool = opts.pool ?? createChunkPool(opts.threads);
    this.ownPool = !opts.pool;
    this.peerId = newPeerId();
    this.overlay = new Overlay({
      peerId: this.peerId,
      book: this.book,
      self: () => (this.port ? { ip: this.host, port: this.port } : null),
      local: (match, limit) => this.sources.find(match, limit),
      hello: () => this.hello,
      log: this.log,
    });
    this.discovery = new NodeDiscovery(this, this.log);
  }

  get hello(): HelloFields {
    return { peer: this.peerId, agent: AGENT, listen: this.port || null, caps: ['bitfield', 'have', 'pex', 'overlay'] };
  }

  static async start(opts: NodeOptions = {}): Promise<SwarmNode> {
    const node = new SwarmNode(opts);
    try {
      await node.boot();
    } catch (err) {
      await node.close({ graceful: false }).catch(() => {});
      throw err;
    }
    return node;
  }

  private async boot(): Promise<void> {
    const o = this.opts;
    if (o.share !== undefined) {
      const library = new Library(o.share, {
        pool: this.pool,
        ...(o.stateDir ? { stateDir: o.stateDir } : {}),
        ...(o.rescanMs !== undefined ? { rescanMs: o.rescanMs } : {}),
        ...(o.watch !== undefined ? { watch: o.watch } : {}),
        ...(o.ignore ? { ignore: o.ignore } : {}),
        onSkip: (name, reason) => {
          this.log('skip', { name, reason });
          // '' is the share's folder itself (moved away, unreadable): named by its path
          const what = name || path.resolve(o.share!);
          o.onWarning?.(`${what}: ${reason}`, { code: ERROR_CODES.SKIPPED, name });
          this.emit('warning', `${what}: ${reason}`);
        },
      });
      this.library = library;
      this.sources.setLibrary(library);
      if (o.onHashing) library.on('hashing', o.onHashing);
      library.on('hashing', (p) => this.emit('hashing', p));
      library.on('error', (err) => {
        o.onWarning?.(err.message, { code: asSwarmError(err).code });
        this.emit('warning', err.message);
      });
      await library.start();
    }
    if (o.listen !== false) {
      this.server = new PeerServer(this.sources, {
        log: this.log,
        peerId: this.peerId,
        overlay: this.overlay,
        ...(o.limits ? { limits: o.limits } : {}),
        ...(o.maxUploadBytesPerSec ? { maxUploadBytesPerSec: o.maxUploadBytesPerSec } : {}),
      });
      const addr = await this.server.listen(o.port ?? (o.share !== undefined ? DEFAULT_PEER_PORT : 0), o.host ?? '127.0.0.1');
      this.host = addr.host;
      this.port = addr.port;
      this.book.setSelf([{ ip: addr.host, port: addr.port }, { ip: '127.0.0.1', port: addr.port }]);
      this.log('serving', { dir: this.library?.root ?? '', host: addr.host, port: addr.port, files: this.library?.files().length ?? 0 });
      const announcer = {
        files: () => [...this.libraryFiles(), ...this.sources.heldContents()],
        onChange: (fn: (changed: AnnouncedFile[], removed: string[]) => void) => {
          this.heldChanged.add(fn);
          this.library?.on('change', (diff) => {
            const changed = new Set([...diff.added, ...diff.changed]);
            fn(this.announce(this.library!.files().filter((f) => changed.has(f.name))), diff.removed);
          });
        },
      };
      this.tracker = await attachTracker(announcer, addr, { ...o, log: this.log, embed: o.embed ?? o.share !== undefined }, (state) => this.emit('tracker', state));
    }
    this.library?.on('change', (diff) => this.emit('change', diff));
    for (const a of await resolveAddresses(o.neighbors ?? [])) this.book.add(a, 'neighbor');
    this.discovery.linkNeighbours();
    if (o.lan) await this.discovery.startLan(o.lan);
  }

  /** Tell the user something is off (warning event, and the onWarning option). */
  warn(message: string, info?: NodeWarningInfo): void {
    this.opts.onWarning?.(message, info);
    this.emit('warning', message);
  }

  /** The tracker this node asks and tells, or null (none, or --no-tracker). */
  trackerAddress(): string | null {
    if (this.opts.noTracker) return null;
    return this.tracker?.address ?? defaultTracker(this.opts.tracker);
  }

  /** Seed 003's `register`: (re-)register with the tracker; says how many files and how many it refused. */
  async trackerRegister(): Promise<{ address: string; files: number; dropped: number }> {
    const t = this.tracker;
    if (!t) throw new SwarmError(ERROR_CODES.USAGE, this.server ? 'no tracker: this peer was started with --no-tracker' : 'this peer does not serve, so it cannot register');
    let dropped = 0;
    const counted = (s: TrackerState) => void (dropped = s.dropped?.length ?? 0);
    this.on('tracker', counted);
    try {
      await t.register();
    } finally {
      this.off('tracker', counted);
    }
    if (!t.client.connected) throw new SwarmError(ERROR_CODES.TRACKER_UNREACHABLE, `tracker ${t.address} cannot be reached; it is tried again every few seconds`);
    return { address: t.address, files: [...this.libraryFiles(), ...this.sources.heldContents()].length, dropped };
  }

  /** Seed 003's `unregister`: leave the tracker's directory (null: there was none). */
  async trackerUnregister(): Promise<string | null> {
    const t = this.tracker;
    if (!t || !t.registered) return null;
    await t.unregister();
    return t.address;
  }

  /** Where a download looks for holders besides the tracker and --peer: the overlay, when there is one. */
  finders(): VersionFinder[] {
    return this.discovery.finders();
  }

  private announce(files: FileInfo[]): AnnouncedFile[] {
    return files.map((f) => ({ name: f.name, mtime: f.mtime, size: f.size, cid: f.cid, partial: false }));
  }

  private libraryFiles(): AnnouncedFile[] {
    return this.library ? this.announce(this.library.files()) : [];
  }

  private heldChange(name: string, removed = false): void {
    const entry = this.sources.heldContents().find((h) => h.name === name);
    for (const fn of this.heldChanged) fn(entry && !removed ? [entry] : [], removed ? [name] : []);
  }

  /** Download NAME with this node: shared while it runs, adopted when done. */
  get(name: string, opts: GetOptions = {}): GetPromise {
    const p = runGet(name, { ...opts, pool: this.pool, host: this });
    this.downloads.add(p);
    const forget = () => this.downloads.delete(p);
    p.then(forget, forget);
    return p;
  }

  // ── DownloadHost: what a running download asks of its node ──────────────────────────────

  share(name: string, mtime: number, source: ChunkSource): void {
    if (!this.server) return;
    this.sources.add(name, mtime, source);
    this.heldChange(name);
  }

  unshare(name: string, cid: string): void {
    this.sources.remove(cid);
    this.heldChange(name, true);
  }

  verified(cid: string, chunks: number[]): void {
    this.sources.noteHave(cid, chunks);
  }

  /** A download completed at `finalPath`: adopt it (no re-hash) and announce it complete. */
  finished(name: string, finalPath: string, manifest: Manifest, st: FileStat): void {
    const lib = this.library;
    if (lib && path.resolve(finalPath) === path.join(lib.root, ...name.split('/'))) {
      lib.adopt(name, st, manifest);
      this.sources.remove(manifest.cid);
      this.heldChange(name, true);
    } else {
      this.heldChange(name);
      // a `swarm serve` of the folder it landed in (another process) adopts it from this record
      const root = finalPath.slice(0, finalPath.length - name.length - 1);
      const state = path.join(root, STATE_DIR_NAME);
      if (existsSync(state)) void writeAdoption(state, name, st, manifest).catch(() => {});
    }
  }

  discover(cid: string, add: (peers: PeerAddress[], vouched: boolean) => void): Discovery {
    // holders that reach this node (their interest in cid) go to the download at once
    const unheld = this.sources.onHolder((c, a) => {
      if (c === cid) add([a], false);
    });
    const address = this.tracker?.address ?? this.opts.tracker;
    const asks = !!address && !this.opts.noTracker;
    let delay = DISCOVER_FIRST_MS;
    let timer: NodeJS.Timeout | null = null;
    let asking = false;
    let stopped = false;
    const schedule = (ms: number) => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(ask, ms);
      timer.unref();
    };
    const ask = () => {
      timer = null;
      if (stopped || asking) return;
      asking = true;
      trackerPeersOf(address!, cid)
        .then((peers) => {
          if (stopped) return;
          for (const a of peers) {
            this.sources.noteHolder(cid, a);
            this.book.add(a, 'tracker');
          }
          add(peers, true);
        }, () => {})
        .finally(() => {
          asking = false;
          if (stopped) return;
          delay = Math.min(DISCOVER_MAX_MS, delay * 2);
          schedule(delay);
        });
    };
    if (asks) schedule(delay);
    return {
      now: () => {
        if (!asks || stopped) return false;
        if (asking) return true;
        delay = DISCOVER_FIRST_MS;
        schedule(0);
        return true;
      },
      stop: () => {
        stopped = true;
        unheld();
        if (timer) clearTimeout(timer);
      },
    };
  }

  /** Bytes this node has uploaded, and the peers it is sending to right now. */
  uploadStats(): { bytes: number; peers: number } {
    return this.server?.uploadStats() ?? { bytes: 0, peers: 0 };
  }

  /** Downloads still running. */
  get running(): number {
    return this.downloads.size;
  }

  /**
   * Stop. Graceful: stop accepting, let running transfers finish. Not graceful: end every
   * connection now; this also cuts short a graceful close already under way (a second Ctrl-C).
   */
  async close(opts: { graceful: boolean; waitMs?: number } = { graceful: true }): Promise<void> {
    if (this.closed) {
      if (!opts.graceful) this.server?.endAll();
      return;
    }
    this.closed = true;
    for (const d of this.downloads) d.download.abort();
    this.library?.stop();
    this.discovery.stop();
    this.overlay.close();
    await this.lan?.close();
    await this.tracker?.close();
    await this.server?.close(opts);
    await Promise.allSettled([...this.downloads]);
    if (this.ownPool) await this.pool.destroy();
  }
}
