/**
 * One walk over a share (or a folder of it): every file's size, mtime, device and inode, and the
 * folders entered. swarm's own state (.swarm/), partial downloads and their tickets are skipped;
 * symlinks are followed only when they stay inside the share and lead to a file; names that could
 * not be requested safely (backslashes, control bytes) are skipped and reported. `diffScans` is
 * pure. The scanner (scanner.ts) repeats walks and looks at what fs.watch names.
 *
 * The file-system calls (readdir, stat, realpath of a symlink) are synchronous, in slices of at
 * most SLICE_MS between which the event loop runs (serving, downloads): each call takes a few
 * microseconds on a local disk, while the same call through fs/promises costs a thread-pool round
 * trip and a promise, 25-50 us of CPU on this project's VM (10,000 stats: 27 ms against ~270 ms).
 * A slow disk can hold the loop for one call, never for a whole walk.
 */
import { opendirSync, realpathSync, statSync, type Dir, type Dirent, type Stats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { STATE_DIR_NAME } from '../constants.js';
import { isInside, isOwnFile, nameProblem, toName } from './names.js';

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
export class Slicer {
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
export async function walk(realRoot: string, start: string, out: ScanResult, dirs: Set<string> | null, opts: ScanOptions, slicer = new Slicer()): Promise<boolean> {
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
export function fileStat(realRoot: string, abs: string, name: string, isLink: boolean, opts: ScanOptions, known?: Stats): FileStat | null {
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
