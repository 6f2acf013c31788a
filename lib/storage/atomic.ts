/**
 * Write a file atomically: write a temp file beside it (fsync unless told not to), rename over the
 * target. The temp file is removed on every failure we see; one left by a killed process carries
 * TEMP_MARK, which the scanner skips and a download of the same target removes when it starts.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { TEMP_MARK } from '../constants.js';

export async function writeFileAtomic(file: string, data: string | Uint8Array, durable = true): Promise<void> {
  const tmp = `${file}${TEMP_MARK}${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
