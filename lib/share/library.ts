/**
 * The library of a share: the scanner's view plus a manifest for every file, kept current.
 *
 *   scan ──► new/changed files ──► hash in the chunk pool (all cores, progress events)
 *        └─► removed files     ──► forgotten
 *   'change' is emitted once manifests are ready, so listeners (the tracker client) announce
 *   only files that can be served.
 *
 * Hashing splits each file into tasks of HASH_TASK_CHUNKS chunks and keeps the pool's threads
 * busy with a bounded number of tasks in flight.
 */
import { EventEmitter } from 'node:events';
import { realpath, stat } from 'node:fs/promises';
import { ERROR_CODES, SwarmError } from '../errors.js';
import path from 'node:path';
import { STATE_DIR_NAME } from '../constants.js';
import { chunkBytesFor, chunkCount } from '../chunking.js';
import { loadHasher, type Hasher } from '../hashing.js';
import { makeManifest } from '../manifest.js';
import type { ChunkPool } from '../pool.js';
import type { FileInfo, Manifest } from '../types.js';
import { kindOf } from './kinds.js';
import { ManifestCache } from './manifest-cache.js';
import { Scanner, type FileStat, type ScanDiff, type ScanResult } from './scanner.js';

const HASH_TASK_CHUNKS = 16;

export interface LibraryOptions {
  pool: ChunkPool;
  /** Where the manifest cache lives; default `<root>/.swarm`. */
  stateDir?: string;
  rescanMs?: number;
  watch?: boolean;
  onSkip?: (name: string, reason: string) => void;
}

export interface HashProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface LibraryEvents {
  hashing: [p: HashProgress];
  change: [diff: ScanDiff];
  error: [err: Error];
}

export class Library extends EventEmitter<LibraryEvents> {
  readonly root: string;
  realRoot = '';
  private readonly scanner: Scanner;
  private readonly cache: ManifestCache;
  private readonly manifests = new Map<string, Manifest>();
  private readonly stats = new Map<string, FileStat>();
  private hasher: Hasher | null = null;
  private updating: Promise<void> = Promise.resolve();
  /** Counters for tests and the log: what the last start actually hashed. */
  readonly counters = { filesHashed: 0, bytesHashed: 0 };

  constructor(root: string, private readonly opts: LibraryOptions) {
    super();
    this.root = path.resolve(root);
    this.scanner = new Scanner(this.root, {
      ...(opts.onSkip ? { onSkip: opts.onSkip } : {}),
      ...(opts.rescanMs !== undefined ? { intervalMs: opts.rescanMs } : {}),
      ...(opts.watch !== undefined ? { watch: opts.watch } : {}),
    });
    this.cache = ManifestCache.inStateDir(opts.stateDir ?? path.join(this.root, STATE_DIR_NAME));
    this.scanner.on('change', (diff, scan) => {
      this.updating = this.updating
        .then(() => this.apply(diff, scan))
        .catch((err: Error) => {
          this.emit('error', err);
        });
    });
    this.scanner.on('error', (err) => this.emit('error', err));
  }

  /** First scan and hash; resolves when every file has a manifest. Then keeps watching. */
  async start(): Promise<void> {
    const st = await stat(this.root).catch(() => null);
    if (!st?.isDirectory()) throw new SwarmError(ERROR_CODES.NOT_FOUND, `not a folder: ${this.root}`);
    this.realRoot = await realpath(this.root);
    this.hasher = await loadHasher();
    await this.cache.load();
    await this.scanner.rescan();
    await this.updating;
    this.scanner.start();
  }

  /** Scan now and wait until manifests are current (tests, and after a download lands). */
  async refresh(): Promise<void> {
    await this.scanner.rescan();
    await this.updating;
  }

  stop(): void {
    this.scanner.stop();
  }

  files(): FileInfo[] {
    const out: FileInfo[] = [];
    for (const [name, m] of this.manifests) out.push({ name, size: m.size, mtime: m.mtime, kind: kindOf(name), cid: m.cid });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  manifest(name: string): Manifest | undefined {
    return this.manifests.get(name);
  }

  /** Size and mtime (ms) the manifest of `name` was computed for. */
  statOf(name: string): FileStat | undefined {
    return this.stats.get(name);
  }

  private async apply(diff: ScanDiff, scan: ScanResult): Promise<void> {
    for (const name of diff.removed) {
      this.manifests.delete(name);
      this.stats.delete(name);
      this.cache.delete(name);
    }
    const todo = [...diff.added, ...diff.changed].filter((n) => scan.has(n));
    const need: { name: string; st: FileStat }[] = [];
    for (const name of todo) {
      const st = scan.get(name)!;
      // a changed file stops being served at once; it comes back when re-hashed
      this.manifests.delete(name);
      const cached = this.cache.get(name, st);
      if (cached) {
        this.manifests.set(name, cached);
        this.stats.set(name, st);
      } else need.push({ name, st });
    }
    await this.hashAll(need);
    await this.cache.save().catch((err: Error) => this.opts.onSkip?.(STATE_DIR_NAME, `manifest cache not saved (${err.message}); the next start hashes again`));
    this.emit('change', diff);
  }

  private async hashAll(files: { name: string; st: FileStat }[]): Promise<void> {
    if (files.length === 0) return;
    const progress: HashProgress = { filesDone: 0, filesTotal: files.length, bytesDone: 0, bytesTotal: files.reduce((a, f) => a + f.st.size, 0) };
    this.emit('hashing', { ...progress });
    const slots = Math.max(2, this.opts.pool.threads * 2);
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const f = files[next++]!;
        try {
          const m = await this.hashFile(f.name, f.st, (bytes) => {
            progress.bytesDone += bytes;
            this.emit('hashing', { ...progress });
          });
          this.manifests.set(f.name, m);
          this.stats.set(f.name, f.st);
          this.cache.set(f.name, f.st, m);
          this.counters.filesHashed++;
          this.counters.bytesHashed += f.st.size;
        } catch (err) {
          // changed or vanished while hashing: the next scan picks it up again
          this.opts.onSkip?.(f.name, `not hashed: ${(err as Error).message}`);
        }
        progress.filesDone++;
        this.emit('hashing', { ...progress });
      }
    };
    await Promise.all(Array.from({ length: Math.min(slots, files.length) }, worker));
  }

  private async hashFile(name: string, st: FileStat, onBytes: (n: number) => void): Promise<Manifest> {
    const chunkBytes = chunkBytesFor(st.size);
    const chunks = chunkCount(st.size, chunkBytes);
    const file = path.join(this.realRoot, ...name.split('/'));
    const parts: Promise<string[]>[] = [];
    for (let first = 0; first < chunks; first += HASH_TASK_CHUNKS) {
      const endChunk = Math.min(chunks, first + HASH_TASK_CHUNKS);
      parts.push(
        this.opts.pool.hashRange({ path: file, size: st.size, mtimeMs: st.mtimeMs, firstChunk: first, endChunk, chunkBytes }).then((h) => {
          onBytes(Math.min(st.size, endChunk * chunkBytes) - first * chunkBytes);
          return h;
        }),
      );
    }
    const hashes = (await Promise.all(parts)).flat();
    return makeManifest(this.hasher!, name, st.size, Math.floor(st.mtimeMs / 1000), chunkBytes, hashes);
  }
}
