/**
 * A complete shared file as a ChunkSource (peer/source.ts): every chunk is verified, and reads go
 * through a descriptor that was checked to be the very file that was hashed.
 *
 * Opening resolves the name's folder inside the share (realpath, must stay inside; remembered for
 * a second, names.ts folderPathInShareSync), opens the name in it with O_NOFOLLOW (a last segment
 * that is a symlink is resolved in full, and must stay inside too), then compares the descriptor's device, inode, size and mtime with the scan that the
 * manifest was computed from, and (on Linux) checks that the path the kernel gives the descriptor
 * is inside the share. A symlink or another file swapped in at any moment between the scan and
 * the open is a different inode, or a path outside, and is refused; after the open, the
 * descriptor can only ever read that inode. Every read is followed by `checkUnchanged` (a synchronous fstat on the open
 * descriptor: the kernel answers from the in-memory inode, ~80 ms per GiB served cheaper than the
 * async call and its promise), so bytes written after hashing are never sent under the old id.
 *
 * Reads of more than SYNC_READ_BYTES go to libuv's thread pool, through the callback API on a
 * plain descriptor, so a cold disk never holds the event loop for a 1 MiB read. Everything else is
 * synchronous: resolving the name (folders the scan just walked, in memory), the open (an inode
 * the scan stat'ed), fstat, close, and reads of a small file. A thread-pool round trip costs
 * 25-50 us of CPU on this project's 2-core VM, several times the call itself, and a connection
 * serves its requests one after another, so with two trips per small file the requester waited
 * on them: measured with 10,000 files of 1-64 KiB, a sync took 4.44 s with both steps in the
 * pool and 3.81 s with neither (source CPU 2.49 -> 2.03 s; median of 5 alternating runs). The
 * price: a small file not in the page cache holds the loop for one disk read; when most recent
 * calls were slow (a cold disk, a slow mount), small reads, opens, fstats and closes go to the
 * thread pool for a while (sync-gate.ts; a slow fstat counts too: a network mount may ask its
 * server for one).
 */
import { close, closeSync, constants, fstat, fstatSync, open, openSync, read, readlinkSync, readv, readvSync, type Stats } from 'node:fs';
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { Manifest } from '../manifest.js';
import { chunksOf } from '../manifest.js';
import { packetsPerChunk } from '../chunk-tasks.js';
import type { ChunkSource, LentFile, SourceReader } from '../peer/source.js';
import type { FileStat } from './scanner.js';
import { folderPathInShareSync, isInside, resolveInShare, resolveInShareSync } from './names.js';
import { shareSyncGate } from './sync-gate.js';

/** Descriptors opened here: still open, and ever opened (tests prove no path leaves one behind). */
let openHandles = 0;
let openedHandles = 0;

export function fileHandles(): { open: number; opened: number } {
  return { open: openHandles, opened: openedHandles };
}

function closeFd(fd: number): void {
  openHandles--;
  // a descriptor opened read-only: closing it writes nothing back, so on a local disk it does not
  // wait; a slow mount may (a FUSE file system hears of every close): in the pool while calls are slow
  if (!shareSyncGate.allowed(Date.now())) {
    close(fd, () => {});
    return;
  }
  try {
    closeSync(fd);
  } catch {
    // closed already: nothing is held
  }
}

/** fstat on the calling thread, timed for the gate, or through the pool while the gate is closed. */
function statFd(fd: number): Stats | Promise<Stats> {
  if (!shareSyncGate.allowed(Date.now())) return new Promise((resolve, reject) => fstat(fd, (err, st) => (err ? reject(err) : resolve(st))));
  const t0 = performance.now();
  try {
    return fstatSync(fd);
  } finally {
    shareSyncGate.took(performance.now() - t0, Date.now());
  }
}

/** Reads up to this many bytes are made on the calling thread (see above). */
export const SYNC_READ_BYTES = 64 << 10;

/** A descriptor of the file `name` in the share, checked to be the very file of `expect` (see above). */
export async function openChecked(realRoot: string, name: string, expect: FileStat): Promise<number> {
  // synchronous unless such calls were slow lately (sync-gate.ts): then through the thread pool
  const sync = shareSyncGate.allowed(Date.now());
  const t0 = performance.now();
  // O_NONBLOCK: a named pipe swapped in for the file would otherwise block this open (the main
  // thread) until someone writes into it; on a regular file the flag changes nothing
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  let fd: number;
  try {
    if (sync) {
      // the folder's real path (remembered a second) and the name's last segment; that segment a
      // symlink (a shared link to a file inside the share): resolved in full, as the pool does
      try {
        fd = openSync(folderPathInShareSync(realRoot, name), flags);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOOP') throw err;
        fd = openSync(resolveInShareSync(realRoot, name), flags);
      }
    } else {
      const real = await resolveInShare(realRoot, name);
      fd = await new Promise<number>((resolve, reject) => open(real, flags, (err, f) => (err ? reject(err) : resolve(f))));
    }
    if (sync) shareSyncGate.took(performance.now() - t0, Date.now());
    openHandles++;
    openedHandles++;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new SwarmError(ERROR_CODES.PATH_ESCAPE, `refused ${JSON.stringify(name)}: it became a symlink`);
    if (code === 'ENOENT') throw new SwarmError(ERROR_CODES.NOT_FOUND, `no such file in the share: ${name}`);
    throw err;
  }
  try {
    const st = await statFd(fd);
    if (st.dev !== expect.dev || st.ino !== expect.ino) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${name} was replaced by another file since it was hashed`);
    if (st.size !== expect.size || st.mtimeMs !== expect.mtimeMs) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${name} changed since it was hashed`);
    // O_NOFOLLOW guards the last segment only. Where the kernel names what the descriptor reached
    // (Linux), that name must be inside the share: a folder on the path swapped for a symlink
    // between realpath and open shows up here, even if a racing scan recorded the outside inode.
    const reached = descriptorPath(fd);
    if (reached !== null && !isInside(realRoot, reached)) throw new SwarmError(ERROR_CODES.PATH_ESCAPE, `refused ${JSON.stringify(name)}: it led outside the share while being opened`);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  return fd;
}

/** The path the kernel gives an open descriptor, or null where it does not say (no /proc). */
function descriptorPath(fd: number): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).replace(/ \(deleted\)$/, '');
  } catch {
    return null;
  }
}

export class FileReader implements SourceReader {
  private closed = false;
  /**
   * Reads handed to the thread pool and not yet returned. The descriptor is closed only when
   * none is left: a read still queued would otherwise run on whatever file next took its number.
   */
  private reading = 0;

  constructor(
    private readonly fd: number,
    private readonly name: string,
    private readonly expect: FileStat,
  ) {}

  read(buf: Buffer, at: number, length: number, position: number): Promise<number> {
    return this.io((done) => read(this.fd, buf, at, length, position, done));
  }

  readv(bufs: Buffer[], position: number): Promise<number> {
    let bytes = 0;
    for (const b of bufs) bytes += b.length;
    if (bytes <= SYNC_READ_BYTES && shareSyncGate.allowed(Date.now())) {
      if (this.closed) return Promise.reject(this.closedError());
      const t0 = performance.now();
      try {
        return Promise.resolve(readvSync(this.fd, bufs, position));
      } catch (err) {
        return Promise.reject(err);
      } finally {
        shareSyncGate.took(performance.now() - t0, Date.now());
      }
    }
    return this.io((done) => readv(this.fd, bufs, position, done));
  }

  private io(start: (done: (err: NodeJS.ErrnoException | null, n: number) => void) => void): Promise<number> {
    if (this.closed) return Promise.reject(this.closedError());
    this.reading++;
    const ended = () => {
      if (--this.reading === 0 && this.closed) closeFd(this.fd);
    };
    return new Promise((resolve, reject) => {
      try {
        start((err, n) => {
          ended();
          if (err) reject(err);
          else resolve(n);
        });
      } catch (err) {
        // refused before it was queued (a range outside the buffer): no callback will come
        ended();
        reject(err);
      }
    });
  }

  lend(): LentFile | null {
    if (this.closed) return null;
    this.reading++; // as for a read in the pool: the descriptor outlives close() until it is back
    let back = false;
    return {
      fd: this.fd,
      release: () => {
        if (back) return;
        back = true;
        if (--this.reading === 0 && this.closed) closeFd(this.fd);
      },
    };
  }

  checkUnchanged(): void | Promise<void> {
    if (this.closed) throw this.closedError();
    if (shareSyncGate.allowed(Date.now())) return this.compare(statFd(this.fd) as Stats);
    // through the pool (calls were slow lately): the descriptor stays open until it returns
    let st: Stats;
    return this.io((done) =>
      fstat(this.fd, (err, s) => {
        st = s;
        done(err, 0);
      }),
    ).then(() => this.compare(st));
  }

  private compare(st: Stats): void {
    if (st.size !== this.expect.size || st.mtimeMs !== this.expect.mtimeMs) {
      throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${this.name} changed while being served`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reading === 0) closeFd(this.fd);
  }

  private closedError(): SwarmError {
    return new SwarmError(ERROR_CODES.FILE_CHANGED, `${this.name} is no longer open`);
  }
}

export class FileSource implements ChunkSource {
  readonly complete = true;
  private bits: Uint8Array | null = null;

  constructor(
    private readonly realRoot: string,
    readonly name: string,
    readonly stat: FileStat,
    readonly manifest: Manifest,
    /** Every packet payload's sum, from when the file was hashed (absent: summed as sent). */
    private readonly sums?: Uint16Array,
  ) {}

  packetSums(chunk: number): Uint16Array | null {
    const per = packetsPerChunk(this.manifest.chunkBytes);
    if (!this.sums || this.sums.length !== chunksOf(this.manifest) * per) return null;
    return this.sums.subarray(chunk * per, (chunk + 1) * per);
  }

  has(chunk: number): boolean {
    return chunk >= 0 && chunk < chunksOf(this.manifest);
  }

  bitfield(): Uint8Array {
    if (!this.bits) {
      const n = chunksOf(this.manifest);
      this.bits = new Uint8Array(Math.ceil(n / 8)).fill(0xff);
      if (n % 8) this.bits[this.bits.length - 1] = (1 << n % 8) - 1;
    }
    return this.bits;
  }

  async open(): Promise<FileReader> {
    return new FileReader(await openChecked(this.realRoot, this.name, this.stat), this.name, this.stat);
  }
}
