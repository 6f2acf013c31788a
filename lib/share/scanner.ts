/**
 * The share scanner (seed 000's "File Scanner"): walk the share, record size and mtime per file,
 * and report what was added, changed or removed since the last scan.
 *
 * `scanShare` is one walk; `diffScans` is pure; `Scanner` repeats the walk on an interval and
 * also when the file system reports activity (debounced), emitting 'change' with the three lists.
 * swarm's own state (.swarm/), partial downloads and their tickets are skipped; symlinks are
 * followed only when they stay inside the share and lead to a file; names that could not be
 * requested safely (backslashes, control bytes) are skipped and reported.
 *
 * Watching: one non-recursive fs.watch per folder the walk entered (Node 20's recursive watch on
 * Linux opens an inotify watch per FILE and follows symlinked folders, even ones leading outside
 * the share). Events name the paths that moved; when they are few, only those paths are looked at
 * again (a folder named: its subtree), not the whole share, so a sync landing thousands of files
 * costs per file, not per file times the share. A `null` name, a watch error or too many names
 * fall back to a full walk; the interval walk covers anything a watch missed.
 *
 * `note(name, stat)`: a file this process put in place itself (a finished download, adopted
 * without hashing): the scanner takes its stat as known, so the events it causes are not news.
 *
 * The walk itself (one pass over a folder tree, in slices that let the event loop run) is walk.ts.
 */
import { EventEmitter } from 'node:events';
import { lstatSync, watch, type FSWatcher } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { notSharedName } from './names.js';
export { isOwnFile, notSharedName } from './names.js';
import { Slicer, diffScans, fileStat, walk, type FileStat, type ScanDiff, type ScanOptions, type ScanResult } from './walk.js';
export { diffScans, scanShare, type FileStat, type ScanDiff, type ScanOptions, type ScanResult } from './walk.js';

export interface ScannerEvents {
  change: [diff: ScanDiff, scan: ScanResult];
  /** A scan finished (whether or not anything changed). */
  scanned: [];
  error: [err: Error];
}

/** Bounds of the wait between file-system activity and the full rescan it causes. */
const WATCH_MIN_WAIT_MS = 300;
const WATCH_MAX_WAIT_MS = 5_000;
/** The wait before looking again at a few named paths (cheap: a stat each). */
const PATHS_WAIT_MS = 60;
/** More named paths than this in one burst: a full walk is cheaper than looking at each. */
const MAX_NAMED_PATHS = 4_096;
/** While every folder is watched, the fallback walk costs at most 1/this of a core, and comes at least this often. */
const WATCHED_WALK_SHARE = 100;
const MAX_WATCHED_WALK_MS = 600_000;
/** Folders watched at most (one inotify watch each); beyond, the interval walk covers the rest. */
const MAX_WATCHED_DIRS = 20_000;

/** How long until the next fallback walk (see Scanner.nextWalk). */
export function fallbackWalkMs(intervalMs: number, watchedAll: boolean, lastScanMs: number): number {
  return watchedAll ? Math.min(MAX_WATCHED_WALK_MS, Math.max(intervalMs, lastScanMs * WATCHED_WALK_SHARE)) : intervalMs;
}

/** Repeats scans; emits 'change' when something differs. `current` is the latest scan. */
export class Scanner extends EventEmitter<ScannerEvents> {
  current: ScanResult = new Map();
  private timer: NodeJS.Timeout | null = null;
  private readonly watchers = new Map<string, FSWatcher>();
  private watching = false;
  private debounce: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** How long the last full scan took (sets how long a burst of events waits). */
  private lastScanMs = 0;
  /** Paths the watchers named since the last look; `full`: something a full walk must settle. */
  private named = new Set<string>();
  private full = false;
  /** Files noted (put in place, or removed, by this process) while a full walk ran: the walk may have missed it. */
  private notedDuring: Set<string> | null = null;
  private realRoot = '';
  /** The folders the last complete full walk entered. */
  private walkedDirs = new Set<string>();

  constructor(private readonly root: string, private readonly opts: ScanOptions & { intervalMs?: number; watch?: boolean } = {}) {
    super();
  }

  /** Scan now (the whole share); resolves when done. Concurrent calls coalesce into at most one more scan. */
  rescan(): Promise<void> {
    this.full = true;
    return this.look();
  }

  /** Folders being watched (share names, '' for the top), for tests. */
  watchedDirs(): string[] {
    return [...this.watchers.keys()].sort();
  }

  /** `name` was put in place by this process with this stat: not news when the watch reports it. */
  note(name: string, st: FileStat): void {
    this.current.set(name, st);
    this.notedDuring?.add(name);
  }

  /** `name` was removed by this process: known as gone now (its watch event is then not news). */
  unnote(name: string): void {
    this.current.delete(name);
    this.notedDuring?.add(name);
  }

  private look(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        const full = this.full || this.named.size > MAX_NAMED_PATHS;
        const named = this.named;
        this.full = false;
        this.named = new Set();
        this.realRoot ||= await realpath(this.root);
        this.notedDuring = new Set();
        let diff: ScanDiff;
        let scan: ScanResult;
        if (full) {
          const t0 = Date.now();
          const next: ScanResult = new Map();
          const dirs = new Set<string>();
          const complete = await walk(this.realRoot, this.realRoot, next, dirs, this.opts);
          // files put in place while we walked: the note is the newer word (the walk may have
          // passed their folder before, or seen the version they replaced)
          for (const name of this.notedDuring) {
            const st = this.current.get(name);
            if (st) next.set(name, st);
            else next.delete(name); // removed by us while we walked (unnote)
          }
          this.lastScanMs = Date.now() - t0;
          diff = diffScans(this.current, next);
          this.current = scan = next;
          if (complete) {
            this.walkedDirs = dirs;
            this.watchDirs(dirs, true);
          }
        } else {
          ({ diff, scan } = await this.lookAt(named, this.notedDuring));
        }
        this.notedDuring = null;
        this.emit('scanned');
        if (diff.added.length || diff.changed.length || diff.removed.length) this.emit('change', diff, scan);
      } while ((this.again || this.full || this.named.size) && !this.stopped);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /**
   * Look again at the named paths only: a file is stat'ed, a folder walked, a path gone takes
   * every name under it along. `scan` holds the current stat of every name in the diff.
   */
  private async lookAt(named: Set<string>, noted: Set<string>): Promise<{ diff: ScanDiff; scan: ScanResult }> {
    const root = this.realRoot;
    const found: ScanResult = new Map();
    /**
     * Folders whose old names are replaced by what was found under them: named paths that are
     * folders now, or were (a folder removed, or replaced by a file). Only these need a pass over
     * every known name; a named file is settled by its own name (a sync landing thousands of files
     * used to pass over every name of the share for each look).
     */
    const under: string[] = [];
    /** Named paths whose own name goes unless it is found as a file (a folder now may have been a file). */
    const exact = new Set<string>();
    const dirs = new Set<string>();
    // the deepest named paths last would be walked twice under a named parent: drop those
    const list = [...named].sort();
    const covered = (n: string) => under.some((p) => n.startsWith(`${p}/`));
    const slicer = new Slicer();
    for (const name of list) {
      await slicer.turn();
      if (covered(name)) continue;
      if (notSharedName(name) !== null || this.opts.ignore?.has(name)) continue;
      const abs = path.join(root, ...name.split('/'));
      let st;
      try {
        st = lstatSync(abs);
      } catch {
        st = null;
      }
      if (st?.isDirectory()) {
        under.push(name);
        // the name itself may have been a file (replaced by this folder): it goes unless found
        exact.add(name);
        await walk(root, abs, found, dirs, this.opts, slicer);
        continue;
      }
      if (this.watchers.has(name) || this.walkedDirs.has(name)) under.push(name); // was a folder: its names go
      exact.add(name);
      if (!st) continue;
      const f = fileStat(root, abs, name, st.isSymbolicLink(), this.opts, st);
      if (f) found.set(name, f);
    }
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    for (const [name, st] of found) {
      if (noted.has(name)) continue; // put in place while we looked: the note is the newer word
      const old = this.current.get(name);
      if (!old) added.push(name);
      else if (old.size !== st.size || old.mtimeMs !== st.mtimeMs || old.ino !== st.ino || old.dev !== st.dev) changed.push(name);
      this.current.set(name, st);
    }
    for (const name of exact) {
      if (found.has(name) || noted.has(name) || !this.current.has(name)) continue;
      this.current.delete(name);
      removed.push(name);
    }
    if (under.length) {
      for (const name of [...this.current.keys()]) {
        if (found.has(name) || noted.has(name)) continue;
        if (under.some((p) => name.startsWith(`${p}/`))) {
          this.current.delete(name);
          removed.push(name);
        }
      }
    }
    // folders gone or new: watch what is there now
    for (const d of [...this.watchers.keys()]) if (under.some((p) => d === p || d.startsWith(`${p}/`)) && !dirs.has(d)) this.unwatch(d);
    this.watchDirs(dirs, false);
    const diff = { added: added.sort(), changed: changed.sort(), removed: removed.sort() };
    const scan: ScanResult = new Map();
    for (const n of [...added, ...changed]) scan.set(n, this.current.get(n)!);
    return { diff, scan };
  }

  start(): void {
    this.nextWalk();
    if (this.opts.watch !== false) {
      this.watching = true;
      // every folder the last full walk entered (start scans first; if not, a walk now)
      if (this.realRoot) this.watchDirs(this.walkedDirs, true);
      else void this.rescan().catch((err) => this.emit('error', err));
    }
  }

  /**
   * The fallback walk, every intervalMs; while every folder the last walk entered is watched (the
   * watches report changes at once), spaced to cost at most 1/WATCHED_WALK_SHARE of a core: a
   * share of 10,000 files walked every 10 s cost a sync or serve ~5% of a core doing nothing.
   */
  private nextWalk(): void {
    if (this.stopped) return;
    const watchedAll = this.watching && this.watchers.size >= this.walkedDirs.size && this.walkedDirs.size > 0;
    const wait = fallbackWalkMs(this.opts.intervalMs ?? 10_000, watchedAll, this.lastScanMs);
    this.timer = setTimeout(() => {
      this.rescan()
        .catch((err) => this.emit('error', err))
        .finally(() => this.nextWalk());
    }, wait);
  }

  /** Watch each folder in `dirs` (share names); `exact`: stop watching the others. */
  private watchDirs(dirs: Set<string>, exact: boolean): void {
    if (!this.watching || this.stopped) return;
    if (exact) for (const d of [...this.watchers.keys()]) if (!dirs.has(d)) this.unwatch(d);
    for (const d of dirs) {
      if (this.watchers.has(d)) continue;
      if (this.watchers.size >= MAX_WATCHED_DIRS) return;
      const abs = d ? path.join(this.realRoot, ...d.split('/')) : this.realRoot;
      try {
        const w = watch(abs, { persistent: false }, (_e, file) => this.onEvent(d, typeof file === 'string' ? file : null));
        w.on('error', () => {
          this.unwatch(d);
          this.full = true;
          this.soon();
        });
        this.watchers.set(d, w);
      } catch {
        // gone already, or out of watches: the interval walk covers it
      }
    }
  }

  private unwatch(d: string): void {
    const w = this.watchers.get(d);
    if (!w) return;
    this.watchers.delete(d);
    w.close();
  }

  private onEvent(dir: string, file: string | null): void {
    if (this.stopped) return;
    if (file === null) {
      this.full = true;
      this.soon();
      return;
    }
    const f = dir ? `${dir}/${file.split(path.sep).join('/')}` : file.split(path.sep).join('/');
    // swarm's own files (part files, tickets, locks, the state folder) change all the time
    // during downloads and are never shared: their events are not news
    if (notSharedName(f) !== null || this.opts.ignore?.has(f)) return;
    if (this.named.size <= MAX_NAMED_PATHS) this.named.add(f);
    this.soon();
  }

  /**
   * A look after file-system activity, debounced. A few named paths are looked at soon; a full
   * walk waits longer, growing with what a walk costs (four times the last one, 0.3 to 5 s), so
   * while files keep arriving a big share is not walked after every one of them.
   */
  private soon(waitMs?: number): void {
    if (this.debounce || this.stopped) return;
    const fullWait = Math.min(WATCH_MAX_WAIT_MS, Math.max(WATCH_MIN_WAIT_MS, this.lastScanMs * 4));
    const wait = waitMs ?? (this.full || this.named.size > MAX_NAMED_PATHS ? fullWait : PATHS_WAIT_MS);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.look().catch((err) => this.emit('error', err));
    }, wait);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    for (const d of [...this.watchers.keys()]) this.unwatch(d);
    this.timer = this.debounce = null;
  }
}
