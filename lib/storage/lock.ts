/**
 * One writer per target: `NAME.swarm-lock`, created with O_EXCL beside the target and held for the
 * whole download. It records who holds it (pid, host, start time). A second download of the same
 * target finds it and stops with SWARM_ERR_LOCKED, so neither can delete or rename the other's
 * part file. A lock whose process is gone (same host, pid not alive) is stale: it is taken over by
 * renaming it aside first, which only one contender can do, then creating a fresh one.
 */
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { LOCK_SUFFIX } from '../constants.js';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class TargetLock {
  private released = false;

  private constructor(readonly path: string) {}

  static pathFor(finalPath: string): string {
    return finalPath + LOCK_SUFFIX;
  }

  /** Take the lock of `finalPath` or throw LOCKED saying who holds it. */
  static async acquire(finalPath: string): Promise<TargetLock> {
    const path = TargetLock.pathFor(finalPath);
    const me: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try {
          await fh.writeFile(JSON.stringify(me));
        } finally {
          await fh.close();
        }
        return new TargetLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let holder: LockInfo | null = null;
      try {
        holder = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
      } catch {
        holder = null;
      }
      if (holder && typeof holder.pid === 'number') {
        const stale = holder.host === me.host && !alive(holder.pid);
        if (!stale) {
          throw new SwarmError(
            ERROR_CODES.LOCKED,
            `another swarm (pid ${holder.pid}${holder.host !== me.host ? ` on ${holder.host}` : ''}, since ${holder.started}) is downloading into ${finalPath}; wait for it to finish, or stop it (a lock left by a process that is gone is taken over)`,
            { pid: holder.pid, lock: path },
          );
        }
        // stale: move it aside (atomic, so two contenders cannot both take over), then retry
        await rename(path, `${path}.stale-${process.pid}`).then(
          () => unlink(`${path}.stale-${process.pid}`).catch(() => {}),
          () => {},
        );
      } else {
        // unreadable: being written this instant, or left empty by a process killed while writing
        const age = Date.now() - ((await stat(path).catch(() => null))?.mtimeMs ?? Date.now());
        if (age > 5_000) await rename(path, `${path}.stale-${process.pid}`).then(() => unlink(`${path}.stale-${process.pid}`).catch(() => {}), () => {});
        else await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
      }
    }
    throw new SwarmError(ERROR_CODES.LOCKED, `could not take the lock ${path}; remove it if no swarm is downloading there`);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await unlink(this.path).catch(() => {});
  }
}
