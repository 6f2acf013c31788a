/**
 * The library of a share: the scanner's view plus a manifest for every file, kept current. It is
 * the SourceIndex (peer/source.ts) the peer server answers from: listings by name in pages,
 * lookups by name, and a ChunkSource per content id.
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
import { mkdir, realpath, stat } from 'node:fs/promises';
import { ERROR_CODES, SwarmError } from '../errors.js';
import path from 'node:path';
import { STATE_DIR_NAME } from '../constants.js';
import { chunkBytesFor, chunkCount } from '../chunking.js';
import { makeManifest, type Manifest } from '../manifest.js';
import type { ChunkPool } from '../pool.js';
import type { FileInfo } from '../types.js';
import type { SourceIndex, SourceReader } from '../peer/source.js';
import { kindOf } from './kinds.js';
import { ManifestCache } from './manifest-cache.js';
import { Scanner, type FileStat, type ScanDiff, type ScanResult } from './scanner.js';
import { FileReader, FileSource, openChecked } from './file-source.js';
import { resolveInShareSync } from './names.js';
import { readAdoptions, removeAdoption } from './adopt.js';

const HASH_TASK_CHUNKS = 16;
/** Changes to the manifest cache are written this long after the first of a burst. */
const SAVE_DELAY_MS = 2_000;

export interface LibraryOptions {
  pool: ChunkPool;
  /** Where the manifest cache lives; default `<root>/.swarm`. */
  stateDir?: string;
  rescanMs?: number;
  watch?: boolean;
  onSkip?: (name: string, reason: string) => void;
  /** Files inside the share that are not shared nor watched (absolute paths: serve's own log). */
  ignore?: string[];
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

export class Library extends EventEmitter<LibraryEvents> implements SourceIndex {
  readonly root: string;
  realRoot = '';
  private readonly scanner: Scanner;
  private readonly cache: ManifestCache;
  /** Where the manifest cache and adoption records live (default `<root>/.swarm`). */
  readonly stateDir: string;
  private readonly sources = new Map<string, FileSource>();
  private readonly byContent = new Map<string, FileSource>();
  private sortedNames: string[] | null = null;
  private updating: Promise<void> = Promise.resolve();
  private saveTimer: NodeJS.Timeout | null = null;
  /** Counters for tests and the log: what the last start actually hashed. */
  readonly counters = { filesHashed: 0, bytesHashed: 0, filesAdopted: 0 };

  constructor(root: string, private readonly opts: LibraryOptions) {
    super();
    this.root = path.resolve(root);
    // A file that cannot be shared is said once, not at every rescan (every 10 s, forever); said
    // again only if it was fine in between and the problem came back.
    let before = new Set<string>();
    let now = new Set<string>();
    const onSkip = opts.onSkip;
    this.scanner = new Scanner(this.root, {
      ...(onSkip
        ? {
            onSkip: (name: string, reason: string) => {
              const k = `${name}\0${reason}`;
              if (now.size < 10_000) now.add(k);
              if (!before.has(k)) onSkip(name, reason);
            },
          }
        : {}),
      ...(opts.rescanMs !== undefined ? { intervalMs: opts.rescanMs } : {}),
      ...(opts.ignore?.length ? { ignore: new Set(opts.ignore.map((f) => path.relative(path.resolve(root), path.resolve(f)).split(path.sep).join('/')).filter((r) => r && !r.startsWith('..'))) } : {}),
      ...(opts.watch !== undefined ? { watch: opts.watch } : {}),
    });
    this.stateDir = opts.stateDir ?? path.join(this.root, STATE_DIR_NAME);
    this.cache = ManifestCache.inStateDir(this.stateDir);
    this.scanner.on('change', (diff, scan) => {
      this.updating = this.updating
        .then(() => this.apply(diff, scan))
        .catch((err: Error) => {
          this.emit('error', err);
        });
    });
    this.scanner.on('scanned', () => {
      before = now;
      now = new Set();
    });
    this.scanner.on('error', (err) => this.emit('error', err));
  }

  /** First scan and hash; resolves when every file has a manifest. Then keeps watching. */
  async start(): Promise<void> {
    const st = await stat(this.root).catch(() => null);
    if (!st?.isDirectory()) throw new SwarmError(ERROR_CODES.NOT_FOUND, `not a folder: ${this.root}`);
    this.realRoot = await realpath(this.root);
    // the state folder exists from the start, so a download finishing into this share (another
    // swarm process) leaves an adoption record here; a read-only share simply gets none
    await mkdir(this.stateDir, { recursive: true }).catch(() => {});
    const cache = await this.cache.load();
    if (cache === 'old-format') this.opts.onSkip?.(STATE_DIR_NAME, 'the manifest cache is from an older swarm (xxhash64 chunk hashes); every file is hashed again once, with BLAKE3');
    if (cache === 'damaged') this.opts.onSkip?.(STATE_DIR_NAME, 'the manifest cache is damaged; every file is hashed again');
    await this.scanner.rescan();
    await this.updating;
    await this.flush();
    this.scanner.start();
  }

  /** Scan now and wait until manifests are current (tests, and after a download lands). */
  async refresh(): Promise<void> {
    await this.scanner.rescan();
    await this.updating;
    await this.flush();
  }

  stop(): void {
    this.scanner.stop();
    if (this.saveTimer) void this.flush();
  }

  /** Write the manifest cache now if it changed (saves are otherwise batched, SAVE_DELAY_MS). */
  async flush(): Promise<void> {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    await this.cache.save().catch((err: Error) => this.opts.onSkip?.(STATE_DIR_NAME, `manifest cache not saved (${err.message}); the next start hashes again`));
  }

  /**
   * The cache is one file of every manifest (megabytes for a big share) written with an fsync:
   * after a burst of changes (a sync landing thousands of files) it is written once, not per change.
   * A cache lost in a crash costs hashing again at the next start, never a wrong manifest (entries
   * are keyed by size, mtime, device and inode).
   */
  private saveSoon(): void {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      void this.flush();
    }, SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  files(): FileInfo[] {
    return this.names().map((n) => this.stat(n)!);
  }

  private names(): string[] {
    this.sortedNames ??= [...this.sources.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return this.sortedNames;
  }

  list(after: string | undefined, limit: number): { files: FileInfo[]; next?: string } {
    const names = this.names();
    let lo = 0;
    if (after !== undefined) {
      let hi = names.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (names[mid]! <= after) lo = mid + 1;
        else hi = mid;
      }
    }
    const page = names.slice(lo, lo + limit);
    const files = page.map((n) => this.stat(n)!);
    return lo + limit < names.length ? { files, next: page[page.length - 1]! } : { files };
  }

  stat(name: string): FileInfo | undefined {
    const s = this.sources.get(name);
    if (!s) return undefined;
    return { name, size: s.manifest.size, mtime: Math.floor(s.stat.mtimeMs / 1000), kind: kindOf(name), cid: s.manifest.cid };
  }

  manifest(name: string): Manifest | undefined {
    return this.sources.get(name)?.manifest;
  }

  byCid(cid: string): FileSource | undefined {
    return this.byContent.get(cid);
  }

  async openByName(name: string): Promise<{ reader: SourceReader; size: number } | undefined> {
    const s = this.sources.get(name);
    if (!s) return undefined;
    return { reader: new FileReader(await openChecked(this.realRoot, name, s.stat), name, s.stat), size: s.stat.size };
  }

  /**
   * A download in this process finished `name` here with manifest `m`: serve it without hashing.
   * Takes effect at once, without a rescan: the scanner takes the file's stat as known (its watch
   * events are then not news), and 'change' says it was added or changed.
   */
  adopt(name: string, st: FileStat, m: Manifest): void {
    this.adoptMany([{ name, st, manifest: m }]);
  }

  /**
   * `name` was just put in place with this stat and will be adopted soon (a batch landing): the
   * scanner is told now, so a look meanwhile does not take it for a new file to hash.
   */
  landing(name: string, st: FileStat): void {
    this.scanner.note(name, st);
  }

  /**
   * This process moved `name` out of the share (sync deleted it, to the trash): no longer served or
   * listed, at once, without waiting for a rescan; 'change' says it was removed.
   */
  removedHere(name: string): void {
    if (!this.sources.has(name)) return;
    this.forget(name);
    this.cache.delete(name);
    this.scanner.unnote(name);
    this.saveSoon();
    this.emit('change', { added: [], changed: [], removed: [name] });
  }

  /** `adopt` for a batch of files: one 'change' for all of them. */
  adoptMany(files: { name: string; st: FileStat; manifest: Manifest }[]): void {
    const added: string[] = [];
    const changed: string[] = [];
    for (const f of files) {
      (this.sources.has(f.name) ? changed : added).push(f.name);
      this.setSource(f.name, f.st, f.manifest);
      this.cache.set(f.name, f.st, f.manifest);
      this.scanner.note(f.name, f.st);
      this.counters.filesAdopted++;
    }
    if (files.length === 0) return;
    this.saveSoon();
    this.emit('change', { added: added.sort(), changed: changed.sort(), removed: [] });
  }

  /** Size, mtime (ms), device and inode the manifest of `name` was computed for. */
  statOf(name: string): FileStat | undefined {
    return this.sources.get(name)?.stat;
  }

  private setSource(name: string, st: FileStat, m: Manifest, sums?: Uint16Array): void {
    this.forget(name);
    const src = new FileSource(this.realRoot, name, st, m, sums);
    this.sources.set(name, src);
    if (!this.byContent.has(m.cid)) this.byContent.set(m.cid, src);
    this.sortedNames = null;
  }

  private forget(name: string): void {
    const old = this.sources.get(name);
    if (!old) return;
    this.sources.delete(name);
    this.sortedNames = null;
    if (this.byContent.get(old.manifest.cid) === old) {
      this.byContent.delete(old.manifest.cid);
      for (const s of this.sources.values()) {
        if (s.manifest.cid === old.manifest.cid) {
          this.byContent.set(s.manifest.cid, s);
          break;
        }
      }
    }
  }

  private async apply(diff: ScanDiff, scan: ScanResult): Promise<void> {
    for (const name of diff.removed) {
      this.forget(name);
      this.cache.delete(name);
    }
    const todo = [...diff.added, ...diff.changed].filter((n) => scan.has(n));
    const need: { name: string; st: FileStat }[] = [];
    const records = todo.length ? await readAdoptions(this.stateDir) : new Map();
    const same = (a: FileStat, b: FileStat) => a.size === b.size && a.mtimeMs === b.mtimeMs && a.dev === b.dev && a.ino === b.ino;
    for (const name of todo) {
      const st = scan.get(name)!;
      // a changed file stops being served at once; it comes back when re-hashed
      this.forget(name);
      // a finished download landed here: take its manifest instead of hashing (same inode, size, mtime)
      const handed = records.get(name);
      if (handed && same(handed.st, st)) {
        this.setSource(name, st, handed.manifest);
        this.cache.set(name, st, handed.manifest);
        this.counters.filesAdopted++;
        await removeAdoption(handed.file);
        continue;
      }
      const cached = this.cache.get(name, st);
      if (cached) this.setSource(name, st, cached, this.cache.sumsOf(name, st));
      else need.push({ name, st });
    }
    await this.hashAll(need);
    this.saveSoon();
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
          const { manifest: m, sums } = await this.hashFile(f.name, f.st, (bytes) => {
            progress.bytesDone += bytes;
            this.emit('hashing', { ...progress });
          });
          this.setSource(f.name, f.st, m, sums);
          this.cache.set(f.name, f.st, m, sums);
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

  private async hashFile(name: string, st: FileStat, onBytes: (n: number) => void): Promise<{ manifest: Manifest; sums: Uint16Array }> {
    const chunkBytes = chunkBytesFor(st.size);
    const chunks = chunkCount(st.size, chunkBytes);
    // the real path (a symlink inside the share is followed here, synchronously: the folder was
    // just walked, so it takes microseconds, a thread-pool trip ten times that); the task opens it with
    // O_NOFOLLOW and checks the inode, so what is hashed is the file that was scanned
    const file = resolveInShareSync(this.realRoot, name);
    const parts: Promise<{ hashes: Uint8Array; sums: Uint16Array }>[] = [];
    for (let first = 0; first < chunks; first += HASH_TASK_CHUNKS) {
      const endChunk = Math.min(chunks, first + HASH_TASK_CHUNKS);
      parts.push(
        this.opts.pool.hashRangeWithSums({ path: file, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino, firstChunk: first, endChunk, chunkBytes }).then((h) => {
          onBytes(Math.min(st.size, endChunk * chunkBytes) - first * chunkBytes);
          return h;
        }),
      );
    }
    const done = await Promise.all(parts);
    const sums = new Uint16Array(done.reduce((a, p) => a + p.sums.length, 0));
    let at = 0;
    for (const p of done) {
      sums.set(p.sums, at);
      at += p.sums.length;
    }
    return { manifest: makeManifest(st.size, chunkBytes, Buffer.concat(done.map((p) => p.hashes))), sums };
  }
}
