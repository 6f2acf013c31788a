/** Write a file atomically: write a temp file beside it (fsync unless told not to), rename over the target. */
import { open, rename, unlink } from 'node:fs/promises';
import { TEMP_MARK } from '../constants.js';

export async function writeFileAtomic(file: string, data: string | Uint8Array, durable = true): Promise<void> {
  const tmp = `${file}${TEMP_MARK}${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
