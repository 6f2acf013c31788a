/**
 * `serve(dir, options)`: share a folder. Glue between the library (scan + manifests), the peer
 * server, and the tracker (an external one it registers with, or one it embeds).
 *
 *   Library ──(change)──► TrackerClient.update/delete
 *      │                       ▲ register / keepalive / reconnect with backoff
 *      ▼                       │
 *   PeerServer ◄── peers    Tracker (embedded when no --tracker is given and none runs locally)
 */
import { EventEmitter } from 'node:events';
import { DEFAULT_PEER_PORT } from './constants.js';
import { createChunkPool, type ChunkPool } from './pool.js';
import { Library, type HashProgress } from './share/library.js';
import type { ScanDiff } from './share/scanner.js';
import { PeerServer } from './peer/server.js';
import type { ServerLimits } from './net/guard.js';
import type { AnnouncedFile } from './protocol/entries.js';
import type { FileInfo } from './types.js';
import { noLog, type Log } from './log.js';
import { attachTracker, type TrackerLink, type TrackerLinkOptions, type TrackerState } from './tracker/link.js';

export interface ServeOptions extends TrackerLinkOptions {
  port?: number;
  host?: string;
  /** Threads of the hashing pool; 0 hashes on the main thread. */
  threads?: number;
  stateDir?: string;
  rescanMs?: number;
  watch?: boolean;
  log?: Log;
  /** Share an existing chunk pool instead of creating one. */
  pool?: ChunkPool;
  /** Upload limit, bytes per second, for all peers together. */
  maxUploadBytesPerSec?: number;
  /** Connection limits and deadlines of the peer server (net/guard.ts). */
  limits?: Partial<ServerLimits>;
  /** Hashing progress, including the first scan (which finishes before `serve` resolves). */
  onHashing?: (p: HashProgress) => void;
  /** Warnings (skipped files and the like), including those of the first scan. */
  onWarning?: (message: string) => void;
}

export interface ServeEvents {
  hashing: [p: HashProgress];
  change: [diff: ScanDiff];
  warning: [message: string];
  tracker: [state: TrackerState];
}

export class ServeHandle extends EventEmitter<ServeEvents> {
  host = '';
  port = 0;
  tracker: TrackerLink | null = null;
  private closed = false;

  constructor(
    readonly library: Library,
    readonly server: PeerServer,
    private readonly pool: ChunkPool,
    private readonly ownPool: boolean,
  ) {
    super();
  }

  /**
   * Stop serving. Graceful: stop accepting, let running transfers finish. Not graceful: end every
   * connection now; this also cuts short a graceful close already under way (a second Ctrl-C).
   */
  async close(opts: { graceful: boolean; waitMs?: number } = { graceful: true }): Promise<void> {
    if (this.closed) {
      if (!opts.graceful) this.server.endAll();
      return;
    }
    this.closed = true;
    this.library.stop();
    await this.tracker?.close();
    await this.server.close(opts);
    if (this.ownPool) await this.pool.destroy();
  }
}

export async function serve(dir: string, opts: ServeOptions = {}): Promise<ServeHandle> {
  const log = opts.log ?? noLog;
  const pool = opts.pool ?? createChunkPool(opts.threads);
  let handle: ServeHandle | null = null;
  const library = new Library(dir, {
    pool,
    ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
    ...(opts.rescanMs !== undefined ? { rescanMs: opts.rescanMs } : {}),
    ...(opts.watch !== undefined ? { watch: opts.watch } : {}),
    onSkip: (name, reason) => {
      log('skip', { name, reason });
      opts.onWarning?.(`${name}: ${reason}`);
      handle?.emit('warning', `${name}: ${reason}`);
    },
  });
  if (opts.onHashing) library.on('hashing', opts.onHashing);
  const server = new PeerServer(library, { log, ...(opts.limits ? { limits: opts.limits } : {}), ...(opts.maxUploadBytesPerSec ? { maxUploadBytesPerSec: opts.maxUploadBytesPerSec } : {}) });
  handle = new ServeHandle(library, server, pool, !opts.pool);
  const h = handle;
  library.on('hashing', (p) => h.emit('hashing', p));
  library.on('error', (err) => {
    opts.onWarning?.(err.message);
    h.emit('warning', err.message);
  });
  try {
    await library.start();
    const addr = await server.listen(opts.port ?? DEFAULT_PEER_PORT, opts.host ?? '127.0.0.1');
    h.host = addr.host;
    h.port = addr.port;
    log('serving', { dir: library.root, host: addr.host, port: addr.port, files: library.files().length });
    const announce = (files: FileInfo[]): AnnouncedFile[] => files.map((f) => ({ name: f.name, mtime: f.mtime, size: f.size, cid: f.cid, partial: false }));
    const announcer = {
      files: () => announce(library.files()),
      onChange: (fn: (changed: AnnouncedFile[], removed: string[]) => void) =>
        library.on('change', (diff) => {
          const changed = new Set([...diff.added, ...diff.changed]);
          fn(announce(library.files().filter((f) => changed.has(f.name))), diff.removed);
        }),
    };
    h.tracker = await attachTracker(announcer, addr, { ...opts, log }, (state) => h.emit('tracker', state));
    library.on('change', (diff) => h.emit('change', diff));
  } catch (err) {
    await h.close({ graceful: false }).catch(() => {});
    throw err;
  }
  return h;
}
