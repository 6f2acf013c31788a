/**
 * Fetching from stock seed-002 peers (Table 2's File Request): they publish no content id and no
 * hashes, and the only request they answer is the plain file name, answered with the raw bytes
 * until they close. So a version held only by them (resolve.ts: a StockTarget) is fetched whole,
 * from one holder at a time, the next holder after a failure, starting over each time (nothing a
 * peer sent can be checked piece by piece, so nothing of a failed attempt is kept).
 *
 *   target lock held by the caller ─► what is at NAME (folder: refuse; same size and mtime: up to
 *   date; another file: refuse unless overwrite) ─► NAME.swarm-part (empty) ─► per holder:
 *   connect ─► send the name ─► stream into the part file ─► the holder closes (FIN) ─► size
 *   check ─► fsync, mtime from the directory, final name (never over a file that appeared)
 *
 * What is checked, since there is no hash: the size when the directory gives one (more bytes than
 * it are never written; fewer, or a connection reset, fail the attempt); that the holder ended the
 * stream itself (a reset, a timeout or a stall is a failure, not the end of the file); time (no
 * connection within CONNECT_MS, no byte for STALL_MS, or fewer than SLOW_MIN_BYTES in a
 * SLOW_WINDOW_MS window drop the holder) and bytes (at most the size, or MAX_FILE_BYTES and the
 * free space less a reserve (freeReserve) when no size is known). A seed-002 directory (Table 1)
 * carries no size, so for most stock peers the result is `verified: "none"`: the bytes are as the
 * peer sent them, and `get` says so. Nothing ever appears under NAME before the whole transfer ended cleanly.
 */
import net from 'node:net';
import path from 'node:path';
import { lstat as lstatP, statfs as statfsP, unlink as unlinkP } from 'node:fs/promises';
import { ftruncate as ftruncateCb, write as writeCb } from 'node:fs';
import { promisify } from 'node:util';
import { MAX_FILE_BYTES } from '../constants.js';
import { ERROR_CODES, SwarmError, asSwarmError, type ErrorCode } from '../errors.js';
import { PartFile, partPaths } from '../storage/part-file.js';
import { addressText, type PeerAddress } from '../types.js';
import { doneEvent, type DoneEvent, type DownloadEvents, type PeerView } from './events.js';
import type { StockTarget } from './resolve.js';

const ftruncateP = promisify(ftruncateCb);
const writeP = promisify(writeCb);

export const STOCK_CONNECT_MS = 5_000;
export const STOCK_STALL_MS = 10_000;
export const STOCK_SLOW_WINDOW_MS = 30_000;
export const STOCK_SLOW_MIN_BYTES = 64 << 10;
const PROGRESS_MS = 250;

export interface StockFetchOptions {
  signal: AbortSignal;
  overwrite: boolean;
  /** NAME is the caller's: not looked at first; awaited just before the file takes NAME (get-options.ts). */
  beforeReplace?: () => Promise<void>;
  connectMs?: number;
  stallMs?: number;
  slowWindowMs?: number;
  slowMinBytes?: number;
  /** Most bytes accepted when the directory gives no size (default MAX_FILE_BYTES, and the free space). */
  maxBytes?: number;
  emit: <K extends keyof DownloadEvents>(event: K, ...args: DownloadEvents[K]) => void;
}

/** The most bytes one attempt may write, and what going past it is. */
interface Limit {
  bytes: number;
  code: ErrorCode;
  why: string;
}

/** Free space a fetch of unknown size leaves on the disk: 1% of it, and at least 64 MiB. */
export function freeReserve(totalBytes: number): number {
  return Math.max(64 << 20, Math.floor(totalBytes / 100));
}

/**
 * The limit of a fetch whose size nobody gave: `cap` bytes, and no more than keeps freeReserve()
 * free on the disk (`disk`, when known): a holder that sends without end fills neither the disk
 * nor what the rest of the system needs of it.
 */
export function stockLimit(cap: number, disk: { avail: number; total: number } | null): Limit {
  const room = disk ? Math.max(0, disk.avail - freeReserve(disk.total)) : Infinity;
  if (room < cap) return { bytes: room, code: ERROR_CODES.DISK_FULL, why: `sent more than ${room} bytes, the room on the disk (it keeps ${freeReserve(disk!.total)} bytes free); free some space, or save elsewhere with -o DIR` };
  return { bytes: cap, code: ERROR_CODES.TRUNCATED, why: `sent more than ${cap} bytes, the most a file may have` };
}

const addr = addressText;

class AttemptFailed extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

/** The whole download of a StockTarget into `finalPath` (the caller holds the target's lock). */
export async function fetchStock(target: StockTarget, finalPath: string, started: number, opts: StockFetchOptions): Promise<DoneEvent> {
  const { name } = target;
  const known = target.size >= 0;
  const result = (over: Partial<DoneEvent>): DoneEvent => doneEvent({ name, path: finalPath, cid: target.cid, size: known ? target.size : 0, started }, { verified: known ? 'size' : 'none', ...over });

  // what is at NAME, before any byte is asked for (unless the caller replaces it itself)
  const st = opts.beforeReplace ? null : await lstatP(finalPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (st?.isDirectory()) throw new SwarmError(ERROR_CODES.EXISTS, `${finalPath} is a folder; nothing was downloaded (save elsewhere with -o DIR)`);
  if (st) {
    if (st.isFile() && Math.floor(st.mtimeMs / 1000) === target.mtime && (!known || st.size === target.size)) {
      return result({ upToDate: true, size: st.size });
    }
    if (!opts.overwrite) {
      const when = new Date(st.mtimeMs).toISOString().slice(0, 19).replace('T', ' ');
      throw new SwarmError(ERROR_CODES.EXISTS, `${finalPath} already exists with other content (${st.size} bytes, modified ${when} UTC); it was left alone: use --overwrite to replace it, or -o DIR to save elsewhere`);
    }
    opts.emit('warning', { message: `${finalPath} holds other content; it will be replaced when the download completes (--overwrite)` });
  }
  // a ticket here belongs to a chunked download of another version: its part file is reused below
  const { ticket } = partPaths(finalPath);
  if (await unlinkP(ticket).then(() => true, () => false)) {
    opts.emit('warning', { message: `${name} is now held only by stock seed-002 peers (modified ${new Date(target.mtime * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC); discarding the partial download of another version` });
  }
  let limit: Limit = known ? { bytes: target.size, code: ERROR_CODES.TRUNCATED, why: `sent more than the ${target.size} bytes the directory gives` } : stockLimit(opts.maxBytes ?? MAX_FILE_BYTES, null);
  if (!known) {
    const fs = await statfsP(path.dirname(finalPath)).catch(() => null);
    if (fs) limit = stockLimit(opts.maxBytes ?? MAX_FILE_BYTES, { avail: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize });
    opts.emit('warning', { message: `${name} is held only by stock seed-002 peers, which publish no hash and no size: it is fetched whole and checked only for a clean end of the transfer` });
  }
  const part = await PartFile.open(finalPath, 0, { keep: false, needBytes: known ? target.size : 0 });
  let finished = false;
  try {
    opts.emit('start', {
      name,
      path: finalPath,
      size: target.size,
      mtime: target.mtime,
      cid: target.cid,
      chunks: 1,
      chunkBytes: Math.max(0, target.size),
      peers: target.holders.map(addr),
      resumedChunks: 0,
      source: target.source,
    });
    const views: PeerView[] = target.holders.map((h) => ({ address: addr(h), state: 'connecting', rate: 0, chunks: 0, inflight: 0, strikes: 0, complete: true }));
    let dropped = 0;
    const failures: { peer: string; code: ErrorCode; reason: string }[] = [];
    for (let i = 0; i < target.holders.length; i++) {
      opts.signal.throwIfAborted();
      const h = target.holders[i]!;
      const view = views[i]!;
      try {
        const bytes = await attempt(h, name, part, known ? target.size : -1, limit, opts, (got, rate) => {
          view.state = 'active';
          view.rate = rate;
          view.inflight = 1;
          opts.emit('progress', { bytes: got, total: known ? target.size : got, rate, peers: views });
        });
        view.state = 'active';
        view.inflight = 0;
        view.chunks = 1;
        await opts.beforeReplace?.();
        await part.finish(target.mtime, opts.overwrite);
        finished = true;
        const seconds = (Date.now() - started) / 1000;
        return result({ size: bytes, seconds, rate: bytes / Math.max(seconds, 1e-3), peersUsed: 1, peersDropped: dropped, fetchedChunks: 1 });
      } catch (err) {
        if (opts.signal.aborted) throw err;
        if (!(err instanceof AttemptFailed)) throw err;
        dropped++;
        view.state = 'dropped';
        view.inflight = 0;
        failures.push({ peer: view.address, code: err.code, reason: err.message });
        opts.emit('peer-dropped', { peer: view.address, reason: err.message, code: err.code });
        // nothing of a failed attempt can be trusted: the next holder starts from byte 0
        await ftruncateP(part.fd, 0);
      }
    }
    const allData = failures.length > 0 && failures.every((f) => f.code === ERROR_CODES.TRUNCATED);
    throw new SwarmError(
      allData ? ERROR_CODES.TRUNCATED : ERROR_CODES.NO_PEERS,
      `no stock seed-002 holder of ${name} delivered it whole${failures.length ? `: ${failures.map((f) => `${f.peer}: ${f.reason}`).join('; ')}` : ' (no holder)'}; nothing was written under ${finalPath}`,
    );
  } finally {
    if (!finished) {
      // no ticket, no resume: nothing of a stock transfer is worth keeping
      await part.close();
      await unlinkP(part.partPath).catch(() => {});
    }
  }
}

/**
 * One holder: send the plain name, write what comes into the part file in order, until the
 * holder ends the stream. Resolves the byte count; fails with AttemptFailed (the holder is
 * dropped) or the abort.
 */
function attempt(
  h: PeerAddress,
  name: string,
  part: PartFile,
  size: number,
  limit: Limit,
  opts: StockFetchOptions,
  progress: (bytes: number, rate: number) => void,
): Promise<number> {
  const connectMs = opts.connectMs ?? STOCK_CONNECT_MS;
  const stallMs = opts.stallMs ?? STOCK_STALL_MS;
  const windowMs = opts.slowWindowMs ?? STOCK_SLOW_WINDOW_MS;
  const minBytes = opts.slowMinBytes ?? STOCK_SLOW_MIN_BYTES;
  return new Promise<number>((resolve, reject) => {
    const socket = net.connect({ host: h.ip, port: h.port });
    let got = 0;
    let written = Promise.resolve();
    let settled = false;
    let connected = false;
    let lastByteAt = Date.now();
    let windowStart = Date.now();
    let windowBytes = 0;
    let lastProgress = 0;
    const t0 = Date.now();
    const fail = (code: ErrorCode, message: string) => finish(new AttemptFailed(code, message));
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearInterval(clock);
      opts.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      // settle only after the writes already started are done (the part file is then ours again)
      written.then(
        () => (err ? reject(err) : resolve(got)),
        (e: unknown) => reject(err ?? asSwarmError(e)),
      );
    };
    const onAbort = () => finish(asSwarmError(opts.signal.reason ?? new SwarmError(ERROR_CODES.INTERRUPTED, 'interrupted')));
    opts.signal.addEventListener('abort', onAbort, { once: true });
    const clock = setInterval(() => {
      const now = Date.now();
      if (!connected) {
        if (now - t0 > connectMs) fail(ERROR_CODES.PEER_TIMEOUT, `no connection within ${connectMs} ms`);
        return;
      }
      if (now - lastByteAt > stallMs) return fail(ERROR_CODES.PEER_TIMEOUT, `stalled: no byte for ${stallMs} ms after ${got} bytes`);
      if (now - windowStart >= windowMs) {
        if (windowBytes < minBytes) return fail(ERROR_CODES.PEER_TIMEOUT, `too slow: ${windowBytes} bytes in ${windowMs} ms`);
        windowStart = now;
        windowBytes = 0;
      }
    }, Math.max(20, Math.min(250, Math.floor(stallMs / 4))));
    socket.on('connect', () => {
      connected = true;
      lastByteAt = windowStart = Date.now();
      socket.setNoDelay(true);
      // Table 2: the plain file name, nothing else (a stock server takes what it reads as the name)
      socket.write(name);
    });
    socket.on('data', (d: Buffer) => {
      if (settled) return;
      lastByteAt = Date.now();
      windowBytes += d.length;
      if (got + d.length > limit.bytes) return fail(limit.code, limit.why);
      const at = got;
      got += d.length;
      // writes go in order, each at its offset; the socket waits while the disk is behind
      socket.pause();
      written = written.then(async () => {
        for (let off = 0; off < d.length; ) off += (await writeP(part.fd, d, off, d.length - off, at + off)).bytesWritten;
      });
      written.then(
        () => {
          part.wrote(d.length);
          if (!settled) socket.resume();
        },
        (e: unknown) => finish(asSwarmError(e)),
      );
      const now = Date.now();
      if (now - lastProgress >= PROGRESS_MS) {
        lastProgress = now;
        progress(got, (got * 1000) / Math.max(1, now - t0));
      }
    });
    socket.on('end', () => {
      // the holder closed: the whole file, if the size agrees
      if (size >= 0 && got !== size) return fail(ERROR_CODES.TRUNCATED, `ended after ${got} of the ${size} bytes the directory gives`);
      progress(got, (got * 1000) / Math.max(1, Date.now() - t0));
      finish(null);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => fail(ERROR_CODES.PEER_CLOSED, connected ? `connection failed after ${got} bytes (${e.code ?? e.message})` : `cannot connect (${e.code ?? e.message})`));
    socket.on('close', () => fail(ERROR_CODES.PEER_CLOSED, `closed without ending the transfer after ${got} bytes`));
  });
}
