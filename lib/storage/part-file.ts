/**
 * The part file: `NAME.swarm-part` beside where NAME will land, sized to the final length up
 * front (ftruncate: sparse on most file systems, so free space is checked with statfs first).
 * Chunk writes happen in the chunk pool by positional write on this fd. `finish` fsyncs, closes,
 * sets mtime and atime from the directory entry and gives it its final name; until then nothing
 * exists under NAME. The final name is taken without replacing anything that appeared there
 * meanwhile (a hard link, which fails if NAME exists, then the part name is removed), unless the
 * caller asked to overwrite. The part file is only ever touched under the target's lock.
 */
import { link, open, rename, utimes, statfs, unlink, lstat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fstatSync } from 'node:fs';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { PART_SUFFIX, TICKET_SUFFIX } from '../constants.js';
import { ioError, syncDir } from './fs-steps.js';

export function partPaths(finalPath: string): { part: string; ticket: string } {
  return { part: finalPath + PART_SUFFIX, ticket: finalPath + TICKET_SUFFIX };
}

/** Written bytes between background flushes (see `wrote`). */
export const FLUSH_EVERY_BYTES = 64 << 20;

export class PartFile {
  private unflushed = 0;
  private flushing: Promise<void> | null = null;

  private constructor(readonly finalPath: string, readonly partPath: string, private fh: FileHandle | null) {}

  /**
   * Note `bytes` written. Every FLUSH_EVERY_BYTES a datasync starts in the background (on libuv's
   * threadpool, while the transfer goes on), so the fsync at the end finds little left to write
   * instead of the whole file: the disk works during the download, not after it.
   */
  wrote(bytes: number): void {
    this.unflushed += bytes;
    if (this.unflushed < FLUSH_EVERY_BYTES || this.flushing || !this.fh) return;
    this.unflushed = 0;
    this.flushing = this.fh
      .datasync()
      .catch(() => {}) // a failure here resurfaces at the final fsync
      .finally(() => {
        this.flushing = null;
      });
  }

  /** Device and inode of the part file (a reader of it checks it opened this very file). */
  identity(): { dev: number; ino: number } {
    const st = fstatSync(this.fd);
    return { dev: st.dev, ino: st.ino };
  }

  get fd(): number {
    if (!this.fh) throw new SwarmError(ERROR_CODES.INTERNAL, 'part file is closed');
    return this.fh.fd;
  }

  /** Open (creating or keeping) the part file and size it. `needBytes` is checked against free space. */
  static async open(finalPath: string, size: number, opts: { keep: boolean; needBytes: number }): Promise<PartFile> {
    const { part } = partPaths(finalPath);
    try {
      const fs = await statfs(path.dirname(finalPath));
      const free = fs.bavail * fs.bsize;
      if (free < opts.needBytes) {
        throw new SwarmError(ERROR_CODES.DISK_FULL, `not enough space in ${path.dirname(finalPath)}: ${opts.needBytes} bytes needed, ${free} free`);
      }
    } catch (err) {
      if (err instanceof SwarmError) throw err;
      // statfs unsupported here: writes will report ENOSPC instead
    }
    try {
      if (!opts.keep) await unlink(part).catch(() => {});
      const fh = await open(part, opts.keep ? 'r+' : 'w+').catch(async (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return open(part, 'w+');
        throw err;
      });
      await fh.truncate(size);
      return new PartFile(finalPath, part, fh);
    } catch (err) {
      throw ioError(err, `cannot prepare ${part}`);
    }
  }

  /**
   * Make the file durable, give it the directory's mtime and its final name. Without `overwrite`,
   * a file that appeared at NAME during the download is left alone: EXISTS, and the finished bytes
   * stay in the part file.
   */
  async finish(mtimeSec: number, overwrite = false): Promise<void> {
    await this.flushing;
    const fh = this.fh!;
    try {
      await fh.sync();
      await fh.close();
      this.fh = null;
      await utimes(this.partPath, mtimeSec, mtimeSec);
    } catch (err) {
      throw ioError(err, `cannot finish ${this.partPath}`);
    }
    if (overwrite) {
      await rename(this.partPath, this.finalPath).catch((err) => {
        throw ioError(err, `cannot rename ${this.partPath} to ${this.finalPath}`);
      });
    } else {
      try {
        await link(this.partPath, this.finalPath);
        await unlink(this.partPath);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          throw new SwarmError(ERROR_CODES.EXISTS, `${this.finalPath} appeared while downloading; it was left alone and the download is complete in ${this.partPath} (use --overwrite to replace it)`);
        }
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV' && code !== 'EMLINK') throw ioError(err, `cannot name ${this.finalPath}`);
        // no hard links here (FAT, some network shares): check, then rename
        if (await lstat(this.finalPath).then(() => true, () => false)) {
          throw new SwarmError(ERROR_CODES.EXISTS, `${this.finalPath} appeared while downloading; it was left alone and the download is complete in ${this.partPath} (use --overwrite to replace it)`);
        }
        await rename(this.partPath, this.finalPath).catch((e) => {
          throw ioError(e, `cannot rename ${this.partPath} to ${this.finalPath}`);
        });
      }
    }
    await syncDir(path.dirname(this.finalPath));
  }

  /** Close without finishing (interrupt, failure): the part file stays for resuming. */
  async close(): Promise<void> {
    await this.flushing;
    const fh = this.fh;
    this.fh = null;
    if (fh) {
      await fh.sync().catch(() => {});
      await fh.close().catch(() => {});
    }
  }
}

