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
 * The walk's file-system calls (readdir, stat, realpath of a symlink) are synchronous, in slices
 * of at most SLICE_MS between which the event loop runs (serving, downloads): each call takes a
 * few microseconds on a local disk, while the same call through fs/promises costs a thread-pool
 * round trip and a promise, 25-50 us of CPU on this project's VM (10,000 stats: 27 ms against
 * ~270 ms). A slow disk can hold the loop for one call, never for a whole walk.
 */
import { EventEmitter } from 'node:events';
import { lstatSync, opendirSync, realpathSync, statSync, watch, type Dir, type Dirent, type FSWatcher, type Stats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { STATE_DIR_NAME } from '../constants.js';
import { isOwnFile, notSharedName } from './names.js';
export { isOwnFile, notSharedName } from './names.js';
import { isInside, nameProblem, toName } from './names.js';

export interface FileStat {
  size: number;
  mtimeMs: number;
  /** Device and inode of the file the name led to when scanned: a file swapped in later differs. */
  dev: number;
  ino: number;
}

export type ScanResult = Map<string, FileStat>;

export interface ScanDiff {
  added: string[];
  changed: string[];
  removed: string[];
}

export interface ScanOptions {
  /** Called for each entry that is skipped, with a reason. */
  onSkip?: (name: string, reason: string) => void;
  /** Upper bound on directory entries visited (guards against pathological trees). */
  maxEntries?: number;
  /** Names (relative, `/`-separated) never shared nor watched: e.g. serve's own `--log` file inside the share. */
  ignore?: ReadonlySet<string>;
}

export async function scanShare(root: string, opts: ScanOptions = {}): Promise<ScanResult> {
  const realRoot = await realpath(root);
  const out: ScanResult = new Map();
  await walk(realRoot, realRoot, out, null, opts);
  return out;
}

/** The longest stretch of synchronous walking before the event loop gets a turn. */
const SLICE_MS = 4;
/** Folder entries read per system call (getdents), synchronously. */
const DIR_BUFFER_ENTRIES = 256;

/** Yields to the event loop once SLICE_MS of synchronous work has run since the last turn. */
class Slicer {
  private since = performance.now();
  /** True when the loop is due a turn: then `await turn()` (checked first, the await costs more than the check). */
  get due(): boolean {
    return performance.now() - this.since >= SLICE_MS;
  }
  async turn(): Promise<void> {
    if (!this.due) return;
    await new Promise((r) => setImmediate(r));
    this.since = performance.now();
  }
}

/**
 * Walk `start` (a folder inside `realRoot`, or the root): files into `out`, every folder entered
 * (share names, '' for the root) into `dirs`. False when maxEntries cut the walk short.
 */
async function walk(realRoot: string, start: string, out: ScanResult, dirs: Set<string> | null, opts: ScanOptions, slicer = new Slicer()): Promise<boolean> {
  const maxEntries = opts.maxEntries ?? 1_000_000;
  let visited = 0;
  const stack: string[] = [start];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    // read entry by entry (a buffer of DIR_BUFFER_ENTRIES), not with readdirSync: one folder of
    // 200,000 entries held the loop for 230 ms in that single call and made one array of them all,
    // past maxEntries too (hostile review)
    let handle: Dir;
    try {
      handle = opendirSync(dir, { bufferSize: DIR_BUFFER_ENTRIES });
    } catch (err) {
      opts.onSkip?.(toName(path.relative(realRoot, dir)), `unreadable folder (${(err as NodeJS.ErrnoException).code})`);
      continue;
    }
    dirs?.add(toName(path.relative(realRoot, dir)));
    try {
      for (;;) {
        // a turn before every entry: entries skipped at once (named pipes, sockets, devices, swarm's
        // own names) cost a few microseconds each, and 200,000 of them held the loop for 0.7 s
        if (slicer.due) await slicer.turn();
        let ent: Dirent | null;
        try {
          ent = handle.readSync();
        } catch (err) {
          opts.onSkip?.(toName(path.relative(realRoot, dir)), `unreadable folder (${(err as NodeJS.ErrnoException).code})`);
          break;
        }
        if (ent === null) break;
        if (++visited > maxEntries) {
          opts.onSkip?.('', `more than ${maxEntries} entries; the rest of the share is not scanned`);
          return false;
        }
        const abs = path.join(dir, ent.name);
        const name = toName(path.relative(realRoot, abs));
        if (dir === realRoot && ent.name === STATE_DIR_NAME) continue;
        if (isOwnFile(name) || opts.ignore?.has(name)) continue;
        const kind = ent.isSymbolicLink() ? 'link' : ent.isDirectory() ? 'dir' : ent.isFile() ? 'file' : 'other';
        if (kind === 'dir') {
          stack.push(abs);
          continue;
        }
        if (kind === 'other') continue;
        const st = fileStat(realRoot, abs, name, kind === 'link', opts);
        if (st) out.set(name, st);
      }
    } finally {
      handle.closeSync();
    }
  }
  return true;
}

/**
 * The stat of one entry that is a file or a symlink (followed only when it stays inside the share
 * and leads to a file), or null (skipped, with the reason told when there is one).
 */
function fileStat(realRoot: string, abs: string, name: string, isLink: boolean, opts: ScanOptions, known?: Stats): FileStat | null {
  let target = abs;
  if (isLink) {
    try {
      target = realpathSync.native(abs);
    } catch {
      opts.onSkip?.(name, 'broken symlink');
      return null;
    }
    if (!isInside(realRoot, target)) {
      opts.onSkip?.(name, 'symlink leads outside the share');
      return null;
    }
  }
  // `known`: the lstat the caller just took of a name that is not a symlink (the same answer)
  let s = isLink ? undefined : known;
  if (!s) {
    try {
      s = statSync(target);
    } catch {
      if (isLink) opts.onSkip?.(name, 'broken symlink');
      return null; // removed while we walked
    }
  }
  if (isLink && s.isDirectory()) {
    // a link to a folder inside the share would list the same files twice (or loop)
    opts.onSkip?.(name, 'symlink to a folder');
    return null;
  }
  if (!s.isFile()) return null;
  const problem = nameProblem(name);
  if (problem) {
    opts.onSkip?.(name, problem);
    return null;
  }
  return { size: s.size, mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino };
}

export function diffScans(before: ScanResult, after: ScanResult): ScanDiff {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [name, st] of after) {
    const old = before.get(name);
    if (!old) added.push(name);
    else if (old.size !== st.size || old.mtimeMs !== st.mtimeMs || old.ino !== st.ino || old.dev !== st.dev) changed.push(name);
  }
  for (const name of before.keys()) if (!after.has(name)) removed.push(name);
  return { added: added.sort(), changed: changed.sort(), removed: removed.sort() };
}


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
