/**
 * The lock that keeps one `swarm sync` per folder.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { STATE_DIR_NAME } from '../constants.js';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { TargetLock } from '../storage/lock.js';

/**
 * One sync per folder: two would share the temp files and the index, and undo each other. The
 * lock is DIR/.swarm/sync.swarm-lock (storage/lock.ts: a dead holder's is taken over). The CLI
 * takes it before it listens, so that a second sync is told so, not that the port is taken.
 */
export async function lockSyncFolder(root: string): Promise<TargetLock> {
  await mkdir(path.join(root, STATE_DIR_NAME), { recursive: true });
  try {
    return await TargetLock.acquire(path.join(root, STATE_DIR_NAME, 'sync'));
  } catch (err) {
    const e = err as SwarmError;
    if (e.code !== ERROR_CODES.LOCKED) throw err;
    const pid = e.details?.pid;
    throw new SwarmError(ERROR_CODES.LOCKED, `another swarm sync${pid ? ` (pid ${String(pid)})` : ''} is keeping ${root} in step; one sync per folder (stop it first)`, e.details);
  }
}

