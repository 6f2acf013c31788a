/**
 * The share scanner (seed 000's "File Scanner"): walk the share, record size and mtime per file,
 * and report what was added, changed or removed since the last scan.
 *
 * `scanShare` is one walk; `diffScans` is pure; `Scanner` repeats the walk on an interval and
 * also when fs.watch reports activity (debounced), emitting 'change' with the three lists.
 * swarm's own state (.swarm/), partial downloads and their tickets are skipped; symlinks are
 * followed only when they stay inside the share; names that could not be requested safely
 * (backslashes, control bytes) are skipped and reported.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { opendir, stat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { LOCK_SUFFIX, PART_SUFFIX, STATE_DIR_NAME, TEMP_MARK, TICKET_SUFFIX } from '../constants.js';
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

export function isOwnFile(name: string): boolean {
  return name.endsWith(PART_SUFFIX) || name.endsWith(TICKET_SUFFIX) || name.includes(LOCK_SUFFIX) || name.includes(TEMP_MARK);
}

export async function scanShare(root: string, opts: ScanOptions = {}): Promise<ScanResult> {
  const realRoot = await realpath(root);
  const out: ScanResult = new Map();
  const maxEntries = opts.maxEntries ?? 1_000_000;
  let visited = 0;
  const stack: string[] = [realRoot];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let handle;
    try {
      handle = await opendir(dir);
    } catch (err) {
      opts.onSkip?.(toName(path.relative(realRoot, dir)), `unreadable folder (${(err as NodeJS.ErrnoException).code})`);
      continue;
    }
    for await (const ent of handle) {
      if (++visited > maxEntries) {
        opts.onSkip?.('', `more than ${maxEntries} entries; the rest of the share is not scanned`);
        return out;
      }
      const abs = path.join(dir, ent.name);
      const name = toName(path.relative(realRoot, abs));
      if (dir === realRoot && ent.name === STATE_DIR_NAME) continue;
      if (isOwnFile(name) || opts.ignore?.has(name)) continue;
      let isDir = ent.isDirectory();
      let isFile = ent.isFile();
      let st: FileStat | null = null;
      if (ent.isSymbolicLink()) {
        try {
          const target = await realpath(abs);
          if (!isInside(realRoot, target)) {
            opts.onSkip?.(name, 'symlink leads outside the share');
            continue;
          }
          const s = await stat(target);
          isDir = s.isDirectory();
          isFile = s.isFile();
          // a link to a folder inside the share would list the same files twice (or loop)
          if (isDir) {
            opts.onSkip?.(name, 'symlink to a folder');
            continue;
          }
          st = { size: s.size, mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino };
        } catch {
          opts.onSkip?.(name, 'broken symlink');
          continue;
        }
      }
      if (isDir) {
        stack.push(abs);
        continue;
      }
      if (!isFile) continue;
      const problem = nameProblem(name);
      if (problem) {
        opts.onSkip?.(name, problem);
        continue;
      }
      if (!st) {
        try {
          const s = await stat(abs);
          st = { size: s.size, mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino };
        } catch {
          continue; // removed while we walked
        }
      }
      out.set(name, st);
    }
  }
  return out;
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

/** Repeats scans; emits 'change' when something differs. `current` is the latest scan. */
/** Bounds of the wait between file-system activity and the rescan it causes. */
const WATCH_MIN_WAIT_MS = 300;
const WATCH_MAX_WAIT_MS = 5_000;

export class Scanner extends EventEmitter<ScannerEvents> {
  current: ScanResult = new Map();
  private timer: NodeJS.Timeout | null = null;
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** How long the last full scan took (sets how long a burst of events waits). */
  private lastScanMs = 0;

  constructor(private readonly root: string, private readonly opts: ScanOptions & { intervalMs?: number; watch?: boolean } = {}) {
    super();
  }

  /** Scan now; resolves when done. Concurrent calls coalesce into at most one more scan. */
  rescan(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        const t0 = Date.now();
        const next = await scanShare(this.root, this.opts);
        this.lastScanMs = Date.now() - t0;
        const diff = diffScans(this.current, next);
        this.current = next;
        this.emit('scanned');
        if (diff.added.length || diff.changed.length || diff.removed.length) this.emit('change', diff, next);
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  start(): void {
    const interval = this.opts.intervalMs ?? 10_000;
    this.timer = setInterval(() => this.rescan().catch((err) => this.emit('error', err)), interval);
    if (this.opts.watch !== false) {
      try {
        // swarm's own files (part files, tickets, locks, the state folder) change all the time
        // during downloads and are never shared: their events are not news
        this.watcher = watch(this.root, { recursive: true, persistent: false }, (_e, file) => {
          const f = typeof file === 'string' ? file.split(path.sep).join('/') : null;
          if (f && (f === STATE_DIR_NAME || f.startsWith(`${STATE_DIR_NAME}/`) || isOwnFile(f) || this.opts.ignore?.has(f))) return;
          this.soon();
        });
        this.watcher.on('error', () => this.watcher?.close());
      } catch {
        this.watcher = null; // recursive watch unsupported here: the interval still covers us
      }
    }
  }

  /**
   * A rescan after file-system activity, debounced. The wait grows with what a scan costs (four
   * times the last one, 0.3 to 5 s): while files keep arriving (a sync fetching thousands), a big
   * share is not rescanned after every one of them, which made the cost grow with the square of
   * the number of files.
   */
  private soon(): void {
    if (this.debounce || this.stopped) return;
    const wait = Math.min(WATCH_MAX_WAIT_MS, Math.max(WATCH_MIN_WAIT_MS, this.lastScanMs * 4));
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.rescan().catch((err) => this.emit('error', err));
    }, wait);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher?.close();
    this.timer = this.debounce = null;
    this.watcher = null;
  }
}
