/**
 * Small files of a synced folder's own state (DIR/.swarm/sync-key, DIR/.swarm/device-id) created
 * once and never replaced by accident: written to a temp file (fsynced, its mode set at creation),
 * then linked to the final name, which fails if the name exists. So two processes starting at
 * once end with one file both read, and a crash leaves the old file or none, never half of one.
 */
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { STATE_DIR_NAME, TEMP_MARK } from '../constants.js';

export function stateFile(root: string, name: string): string {
  return path.join(root, STATE_DIR_NAME, name);
}

/** Write `file` unless it exists: true when this call created it. */
export async function createOnce(file: string, data: string, mode = 0o644): Promise<boolean> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}${TEMP_MARK}${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** The file's text, or null when it does not exist. */
export async function readState(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
