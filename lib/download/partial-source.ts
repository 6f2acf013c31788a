/**
 * A download in progress as a ChunkSource (peer/source.ts): it serves the chunks its ticket says
 * are verified, from its part file, while it fetches the rest. So every downloader is a holder of
 * what it already has, and a flash crowd feeds itself (seed 004's peers sharing chunks).
 *
 * Only verified chunks are ever served: `has(i)` is the ticket's bit, set only after the chunk
 * matched its BLAKE3 hash and was written; the peer server refuses a range with any other chunk
 * before reading a byte. Readers open the part file read-only with O_NOFOLLOW and check it is the
 * very inode the download writes (device and inode), so nothing swapped in at that path is read.
 * When the download completes and the part file takes its final name, the inode is the same:
 * open readers go on, new ones open the final path. Reads are synchronous (see PartReader.read).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { constants, fstatSync, readSync, readvSync } from 'node:fs';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { chunksOf, type Manifest } from '../manifest.js';
import type { ChunkSource, SourceReader } from '../peer/source.js';
import type { Ticket } from '../storage/ticket.js';

class PartReader implements SourceReader {
  private closed = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  /**
   * A synchronous positional read: what a download serves it wrote moments ago, so it is in the
   * page cache and the read is a memory copy; the asynchronous call (a thread-pool round trip and
   * a promise per read) cost more than the copy in profiles of a flash crowd.
   */
  async read(buf: Buffer, at: number, length: number, position: number): Promise<number> {
    if (this.closed) return 0;
    return readSync(this.fh.fd, buf, at, length, position);
  }

  async readv(bufs: Buffer[], position: number): Promise<number> {
    if (this.closed) return 0;
    return readvSync(this.fh.fd, bufs, position);
  }

  checkUnchanged(): void {
    if (this.closed) throw new SwarmError(ERROR_CODES.FILE_CHANGED, 'the partial download is no longer open');
    if (fstatSync(this.fh.fd).size !== this.size) throw new SwarmError(ERROR_CODES.FILE_CHANGED, 'the partial download changed size');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => {});
  }
}

export class PartialSource implements ChunkSource {
  private readonly chunks: number;

  constructor(
    readonly manifest: Manifest,
    private readonly ticket: Ticket,
    /** Where the bytes are: the part file, then the final path once renamed. */
    private path: string,
    /** Device and inode of the part file (fstat of the descriptor the download writes). */
    private readonly id: { dev: number; ino: number },
    /** The final name: the part file is linked there when the download finishes. */
    private readonly finalPath?: string,
  ) {
    this.chunks = chunksOf(manifest);
  }

  get complete(): boolean {
    return this.ticket.count() === this.chunks;
  }

  has(chunk: number): boolean {
    return chunk >= 0 && chunk < this.chunks && this.ticket.has(chunk);
  }

  bitfield(): Uint8Array {
    return this.ticket.bitfield();
  }

  firstMissing(from: number, to: number): number {
    return this.ticket.firstMissing(Math.max(0, from), Math.min(to, this.chunks));
  }

  /** The part file was renamed to its final name (same inode). */
  moved(to: string): void {
    this.path = to;
  }

  async open(): Promise<SourceReader> {
    // O_NONBLOCK: a named pipe put in its place must not hold a thread-pool thread (no effect on files)
    const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
    // The part file, else (between the link to the final name and moved(), or when this open was
    // queued behind other file-system work while the rename happened) the final name: the same
    // inode, checked below. Tried again while the rename is under way.
    let fh: FileHandle | null = null;
    let last: Error | null = null;
    for (let attempt = 0; attempt < 3 && !fh; attempt++) {
      for (const p of new Set([this.path, this.finalPath ?? this.path])) {
        try {
          fh = await open(p, flags);
          break;
        } catch (err) {
          last = err as Error;
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') break;
        }
      }
    }
    if (!fh) throw new SwarmError(ERROR_CODES.NOT_FOUND, `the partial download is gone: ${last?.message ?? 'no file'}`);
    const st = fstatSync(fh.fd);
    if (st.dev !== this.id.dev || st.ino !== this.id.ino) {
      await fh.close().catch(() => {});
      throw new SwarmError(ERROR_CODES.FILE_CHANGED, 'the partial download was replaced by another file');
    }
    return new PartReader(fh, this.manifest.size);
  }
}
