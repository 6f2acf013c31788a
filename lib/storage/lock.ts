/**
 * One writer per target: `NAME.swarm-lock` beside the target, held for the whole download. It
 * records who holds it (pid, host, boot, the process's start time, a random token). A second
 * download of the same target finds it and stops with SWARM_ERR_LOCKED naming the holder, so
 * neither can delete or rename the other's part file.
 *
 * - The lock file is written whole under a temp name and hard-linked into place (link fails if
 *   the name exists), so no contender ever reads a half-written lock.
 * - A lock whose process is gone (same host, and the pid is not alive, or is alive but started at
 *   another time, or the machine rebooted since) is stale and is taken over. Removing a lock is
 *   only ever done under a second lock, `NAME.swarm-lock.takeover`, after reading the lock file
 *   again and finding the very same file (device, inode and text): so two contenders that both saw
 *   the stale lock cannot end up removing the fresh lock one of them just took.
 * - `release` removes the lock only if it is still ours.
 * Known limit: a process killed while holding `.takeover` (held for a few milliseconds) leaves it;
 * it is removed once its holder is seen gone, with the same re-read check.
 */
import { link, open, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { LOCK_SUFFIX, TEMP_MARK } from '../constants.js';
import { ioError } from './fs-steps.js';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  /** Linux boot id: a lock from before a reboot is stale whatever its pid. */
  boot?: string;
  /** Start time of the holder process (clock ticks since boot, /proc/PID/stat): catches pid reuse. */
  since?: string;
  token?: string;
}

/** What was read at the lock path: its identity and text, and the parsed holder when it parses. */
interface Seen {
  dev: number;
  ino: number;
  mtimeMs: number;
  text: string;
  info: LockInfo | null;
}

/** An unreadable lock (left empty by a process killed while writing it, by an older swarm) this old is stale. */
const UNREADABLE_STALE_MS = 5_000;
const ATTEMPTS = 20;
const TAKEOVER = '.takeover';

/** True when a process `pid` exists (ours to signal or not). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const alive = pidAlive;

function readSmall(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or null off Linux. */
function processStart(pid: number): string | null {
  const stat = readSmall(`/proc/${pid}/stat`);
  if (!stat) return null;
  // the command name (field 2) may hold spaces and parentheses: count from the last ')'
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
}

let bootId: string | null | undefined;
function boot(): string | null {
  if (bootId === undefined) bootId = readSmall('/proc/sys/kernel/random/boot_id');
  return bootId;
}

/** True when the holder of a lock is certainly gone (only provable on this host). */
function holderGone(h: LockInfo): boolean {
  if (h.host !== hostname()) return false;
  const b = boot();
  if (h.boot && b && h.boot !== b) return true;
  if (!alive(h.pid)) return true;
  if (h.since) {
    const now = processStart(h.pid);
    if (now !== null && now !== h.since) return true; // the pid was reused by another process
  }
  return false;
}

function parse(text: string): LockInfo | null {
  try {
    const o = JSON.parse(text) as Partial<LockInfo>;
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0 || typeof o.host !== 'string') return null;
    return { pid: o.pid, host: o.host, started: typeof o.started === 'string' ? o.started : '?', ...(typeof o.boot === 'string' ? { boot: o.boot } : {}), ...(typeof o.since === 'string' ? { since: o.since } : {}), ...(typeof o.token === 'string' ? { token: o.token } : {}) };
  } catch {
    return null;
  }
}

/** The file at `file` now, or null when there is none. */
async function look(file: string): Promise<Seen | null> {
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!fh) return null;
  try {
    const st = await fh.stat();
    const text = (await fh.readFile('utf8')).slice(0, 4096);
    return { dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, text, info: parse(text) };
  } finally {
    await fh.close().catch(() => {});
  }
}

function same(a: Seen, b: Seen | null): boolean {
  return !!b && a.dev === b.dev && a.ino === b.ino && a.text === b.text;
}

function stale(s: Seen): boolean {
  return s.info ? holderGone(s.info) : Date.now() - s.mtimeMs > UNREADABLE_STALE_MS;
}

/**
 * Create `file` holding `text`, whole, unless something is there: written under a temp name and
 * hard-linked into place. Where hard links are not supported, O_EXCL create then write.
 */
async function createExclusive(file: string, text: string): Promise<boolean> {
  const tmp = `${file}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, text, { flag: 'wx' });
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV' && code !== 'EMLINK' && code !== 'ENOSYS') throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  try {
    const fh = await open(file, 'wx');
    try {
      await fh.writeFile(text);
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Remove `file` if it is still exactly what was `seen`, under the takeover lock of `lockFile`. */
async function removeStale(lockFile: string, seen: Seen, text: string): Promise<void> {
  const mutex = lockFile + TAKEOVER;
  if (!(await createExclusive(mutex, text))) {
    // another contender is taking over right now, or one was killed doing so
    const m = await look(mutex);
    if (m && stale(m)) await removeIfSame(mutex, m);
    else await new Promise((r) => setTimeout(r, 10));
    return;
  }
  try {
    await removeIfSame(lockFile, seen);
  } finally {
    await removeIfSame(mutex, await look(mutex), text);
  }
}

async function removeIfSame(file: string, seen: Seen | null, text?: string): Promise<void> {
  if (!seen || (text !== undefined && seen.text !== text)) return;
  if (same(seen, await look(file))) await unlink(file).catch(() => {});
}

/** What this process writes into a lock (or a takeover mutex) it takes: who, since when, a token. */
function ownInfo(): LockInfo {
  const b = boot();
  const since = processStart(process.pid);
  return { pid: process.pid, host: hostname(), started: new Date().toISOString(), ...(b ? { boot: b } : {}), ...(since ? { since } : {}), token: randomBytes(8).toString('hex') };
}

/**
 * The lock at `lockFile` removed if its holder is gone (the same takeover as a contender's): a
 * sweep of what a killed process left. True when no lock is there any more.
 */
export async function removeLockIfStale(lockFile: string): Promise<boolean> {
  const seen = await look(lockFile).catch(() => null);
  if (!seen) return true;
  if (!stale(seen)) return false;
  await removeStale(lockFile, seen, JSON.stringify(ownInfo()));
  return (await look(lockFile).catch(() => seen)) === null;
}

export class TargetLock {
  private released = false;

  private constructor(readonly path: string, private readonly text: string) {}

  static pathFor(finalPath: string): string {
    return finalPath + LOCK_SUFFIX;
  }

  /** Take the lock of `finalPath` or throw LOCKED saying who holds it. */
  static async acquire(finalPath: string, signal?: AbortSignal): Promise<TargetLock> {
    const file = TargetLock.pathFor(finalPath);
    const me = ownInfo();
    const text = JSON.stringify(me);
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        signal?.throwIfAborted();
        if (await createExclusive(file, text)) {
          await sweep(file);
          return new TargetLock(file, text);
        }
        const seen = await look(file);
        if (!seen) continue; // released meanwhile
        if (seen.info && !holderGone(seen.info)) {
          const h = seen.info;
          throw new SwarmError(
            ERROR_CODES.LOCKED,
            `another swarm (pid ${h.pid}${h.host !== me.host ? ` on ${h.host}` : ''}, since ${h.started}) is downloading into ${finalPath}; wait for it to finish, or stop it (a lock left by a process that is gone is taken over)`,
            { pid: h.pid, lock: file },
          );
        }
        if (!seen.info && !stale(seen)) {
          // unreadable and fresh: written this instant by an older swarm; look again shortly
          await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
          continue;
        }
        await removeStale(file, seen, text);
      }
    } catch (err) {
      if (err instanceof SwarmError || signal?.aborted) throw err;
      throw ioError(err, `cannot take the lock ${file}`);
    }
    throw new SwarmError(ERROR_CODES.LOCKED, `could not take the lock ${file}; remove it if no swarm is downloading there`, { lock: file });
  }

  /** Let go of the lock, if it is still ours (it never stops being, unless someone removed it by hand). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const now = await readFile(this.path, 'utf8').catch(() => null);
    if (now === this.text) await unlink(this.path).catch(() => {});
  }
}

/**
 * What killed contenders left beside a lock we now hold: their temp files (pid gone), a takeover
 * lock whose holder is gone, names an older swarm used to move a stale lock aside.
 */
async function sweep(lockFile: string): Promise<void> {
  const dir = path.dirname(lockFile);
  const base = path.basename(lockFile);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(base) || name === base) continue;
    const rest = name.slice(base.length);
    const full = path.join(dir, name);
    if (rest.startsWith(TEMP_MARK)) {
      const pid = Number.parseInt(rest.slice(TEMP_MARK.length), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) await unlink(full).catch(() => {});
    } else if (rest.startsWith('.stale-')) {
      await unlink(full).catch(() => {});
    } else if (rest === TAKEOVER) {
      const m = await look(full).catch(() => null);
      if (m && stale(m)) await removeIfSame(full, m);
    }
  }
}

