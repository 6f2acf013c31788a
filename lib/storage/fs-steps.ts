/**
 * File-system steps of a download that must end: creating the output folders (walked one level at
 * a time, so a path where a folder can never be made, such as /proc/x, fails at once instead of
 * spinning), removing a target's stale temporary files, and making a rename durable. Each honours
 * the download's AbortSignal and turns system errors into SwarmErrors that say what was being done.
 */
import { mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { TEMP_MARK, TICKET_SUFFIX } from '../constants.js';

export function ioError(err: unknown, doing: string): SwarmError {
  const e = asSwarmError(err);
  if (err instanceof SwarmError) return e;
  const sys = (err as NodeJS.ErrnoException).code ?? '';
  const code = e.code === ERROR_CODES.DISK_FULL ? e.code : ERROR_CODES.IO;
  const message = (err as Error)?.message ?? String(err);
  // Node's own messages already start with the code ("ENOSPC: no space left…"): say it once
  const prefix = sys && !message.startsWith(sys) ? `${sys} ` : '';
  return new SwarmError(code, `${doing}: ${prefix}${message}`, sys ? { errno: sys } : undefined, { cause: err });
}

/** Create `dir` and its missing parents, one level at a time (at most one mkdir per level). */
export async function ensureDir(dir: string, signal?: AbortSignal): Promise<void> {
  const abs = path.resolve(dir);
  const levels: string[] = [];
  for (let p = abs; ; p = path.dirname(p)) {
    levels.unshift(p);
    if (path.dirname(p) === p) break;
  }
  for (const level of levels) {
    signal?.throwIfAborted();
    const st = await stat(level).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw ioError(err, `cannot look at ${level}`);
    });
    if (st) {
      if (!st.isDirectory()) throw new SwarmError(ERROR_CODES.EXISTS, `${level} is a file, not a folder: cannot save into it`);
      continue;
    }
    await mkdir(level).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return;
      throw ioError(err, `cannot create the folder ${level}`);
    });
    const made = await stat(level).catch(() => null);
    if (!made?.isDirectory()) throw new SwarmError(ERROR_CODES.IO, `cannot create the folder ${level}: it does not stay a folder`);
  }
}

/** Remove what a killed download of `finalPath` left behind: temp files of its ticket. */
export async function removeStaleTemps(finalPath: string): Promise<number> {
  const dir = path.dirname(finalPath);
  const prefix = path.basename(finalPath) + TICKET_SUFFIX + TEMP_MARK;
  let n = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(prefix)) {
      await unlink(path.join(dir, name)).then(() => n++, () => {});
    }
  }
  return n;
}

/** fsync a folder, so a rename inside it survives a crash (where the platform allows it). */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => null);
  if (!fh) return;
  await fh.sync().catch(() => {});
  await fh.close().catch(() => {});
}
