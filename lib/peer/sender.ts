/**
 * The data path of one peer connection: a requested chunk range read from its source and written
 * to the socket as checksummed packets.
 *
 *   read 1 MiB (256 KiB while warming up) with one readv into 64 KiB payload slots that leave a
 *   36-byte gap before each payload ─► each payload's sum: the one taken when the file was hashed
 *   (a complete file: no pass over the payload here), else summed where it was read (wasm memory);
 *   its frame prefix + packet header written into the gap ─► the piece goes to the socket as ONE
 *   contiguous write; the next read overlaps the send; waits on 'drain'
 *
 * A complete file whose packet sums were taken at hashing, asked for 256 KiB or more, goes out by
 * the kernel instead where the native helper is built (kernel-send.ts: sendfile, no copy through
 * our memory; 4 seeders in bench:compare 0.86-0.96 -> 0.68-0.70 CPU s/GiB). Everything else
 * takes the path above.
 *
 * Before each chunk the server's upload policy (scheduling/upload-slots.ts) is asked for a slot;
 * a request that has to wait is told so once (`busy`), so its requester does not take the wait for
 * a stall. Memory is bounded: READ_BUFFERS read buffers, each released when the socket has taken
 * its last packet. Every read is followed by the source's change check, so bytes of a file that
 * changed since it was hashed are never sent.
 */
import type { Socket } from 'node:net';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { PACKET_PAYLOAD_BYTES } from '../constants.js';
import { PACKET_HEAD_BYTES, writePieceHeads } from '../protocol/packet.js';
import { SendBufferPool, type SendBuffer } from './send-buffers.js';
import { sum16 } from '../protocol/checksum.js';
import type { TokenBucket } from '../scheduling/token-bucket.js';
import type { ChunkSource, SourceReader } from './source.js';
import { kernelSend, type SendPiece } from '../native/sendfile.js';
import { KERNEL_MIN_BYTES, sendKernelPiece, socketFd, type KernelLink } from './kernel-send.js';
import { WriteGate } from './write-gate.js';

const READ_BYTES = 1 << 20;
/**
 * A connection's first WARMUP_BYTES go out in pieces of WARMUP_READ_BYTES. A client that never
 * reads stops us inside the kernel's socket buffers (a few MiB), so it pins two small pieces, not
 * two 1 MiB ones (measured with 256 such clients: 2.05 → 0.5 MiB of RSS each); one that reads
 * gets 1 MiB pieces after that (256 KiB pieces throughout cost ~30% more CPU per GiB served).
 */
const WARMUP_BYTES = 16 << 20;
const WARMUP_READ_BYTES = 256 << 10;
const READ_BUFFERS = 4;
/**
 * A piece waits for the socket to drain only once this much is queued in it: a 1 MiB piece (and a
 * 256 KiB one while warming up) always does, and its read buffer is free again only once the
 * socket has taken it; a small file's piece goes on to its `done`, written with it. The session
 * stops reading requests beyond its reply window (256 KiB) meanwhile.
 */
const DRAIN_AT_BYTES = 256 << 10;
/**
 * A read buffer holds a piece laid out as it goes on the wire: [head][payload][head][payload]…
 * (one head per 64 KiB packet). Reading payloads into their slots (one readv) and sending the
 * buffer whole replaced 32 socket writes per MiB (a head and a payload per packet, through
 * Node's stream machinery) with one.
 */
const SLOT = PACKET_HEAD_BYTES + PACKET_PAYLOAD_BYTES;
const BUFFER_BYTES = (READ_BYTES / PACKET_PAYLOAD_BYTES) * SLOT;
/**
 * This thread's read buffers, shared by its connections (send-buffers.ts): one packet (a small
 * file, a tail), a warm-up piece, a full piece; each piece takes the smallest that holds it.
 */
export const sendBuffers = new SendBufferPool([SLOT, (WARMUP_READ_BYTES / PACKET_PAYLOAD_BYTES) * SLOT, BUFFER_BYTES]);

/** The payload slots of a piece of `length` bytes in its read buffer. */
function payloadViews(buf: Buffer, length: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, k = 0; at < length; at += PACKET_PAYLOAD_BYTES, k++) {
    const start = k * SLOT + PACKET_HEAD_BYTES;
    out.push(buf.subarray(start, start + Math.min(PACKET_PAYLOAD_BYTES, length - at)));
  }
  return out;
}

export interface RangeRequest {
  id: number;
  source: ChunkSource;
  from: number;
  to: number;
  cancelled: boolean;
}

export interface SenderHooks {
  /** True once the connection is gone. */
  closed(): boolean;
  /** The socket holds our data unread (since `at`), or took it all (0). */
  blocked(at: number): void;
  /** Data went out (the connection is doing real work). */
  active(): void;
  /** Wait for an upload slot for chunk `chunk` of request `id` (the session says `busy` meanwhile). */
  slot(id: number, cid: string, chunk: number): Promise<void>;
  /** Chunk `chunk` went out whole. */
  sent(cid: string, chunk: number): void;
  /** Chunk `chunk` was started and will not be finished (cancelled, closed): free its slot. */
  abandoned(cid: string, chunk: number): void;
}

interface Piece {
  chunk: number;
  offset: number;
  length: number;
  last: boolean;
}

export class RangeSender {
  /** Read buffers (in wasm memory, so outgoing payloads are summed where they were read) in use. */
  private buffersOut = 0;
  private bufferWaiters: (() => void)[] = [];
  bytesSent = 0;
  /** The session's frames go through here, so none lands inside a piece the kernel sends. */
  readonly gate: WriteGate;
  /** The heads of a piece the kernel sends (kernel-send.ts). */
  private heads: Buffer | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly upload: TokenBucket | null,
    private readonly hooks: SenderHooks,
  ) {
    this.gate = new WriteGate(socket);
  }

  async send(req: RangeRequest, f: SourceReader): Promise<void> {
    const m = req.source.manifest;
    await f.checkUnchanged();
    const bytes = Math.min(m.size, req.to * m.chunkBytes) - req.from * m.chunkBytes;
    const viaKernel = bytes >= KERNEL_MIN_BYTES && f.lend && req.source.packetSums?.(req.from) ? kernelSend() : null;
    const fd = viaKernel ? socketFd(this.socket) : -1;
    if (viaKernel && fd >= 0) return this.sendByKernel(req, f, viaKernel, fd);
    // pieces of at most READ_BYTES (smaller while warming up), never straddling a chunk boundary,
    // made one at a time as they are sent: planned all at once, a `get` for the whole of a big file
    // (65,536 chunks of up to 16 MiB: a million pieces) cost 6-170 ms of CPU even when cancelled
    // at once, for ~140 bytes from the client (hostile review)
    const pieces = planPieces(req.from, req.to, m.size, m.chunkBytes, this.bytesSent, pieceCap(this.upload));
    const read = async (p: Piece) => {
      const buf = await this.acquireBuffer(Math.ceil(p.length / PACKET_PAYLOAD_BYTES) * SLOT);
      try {
        if (this.hooks.closed()) throw new SwarmError(ERROR_CODES.PEER_CLOSED, 'connection closed');
        await readSlots(f, payloadViews(buf.bytes, p.length), p.offset, m.cid);
        // checked after every read, so bytes read after a change are never sent
        const changed = f.checkUnchanged();
        if (changed) await changed;
      } catch (err) {
        this.releaseBuffer(buf);
        throw err;
      }
      return buf;
    };
    let p = pieces.next().value;
    if (!p) return;
    let next: Promise<SendBuffer> | null = read(p);
    next.catch(() => {}); // awaited below, maybe after a wait for an upload slot: never unhandled meanwhile
    let open = -1; // the chunk started and not yet sent whole
    try {
      for (; p; ) {
        const after = pieces.next().value;
        if (p.offset === p.chunk * m.chunkBytes) {
          // a chunk begins: our upload policy decides when (others may be served first)
          await this.hooks.slot(req.id, m.cid, p.chunk);
          open = p.chunk;
        }
        const buf = await next!;
        next = null;
        if (req.cancelled || this.hooks.closed()) {
          this.releaseBuffer(buf);
          return;
        }
        if (after) {
          next = read(after);
          next.catch(() => {}); // awaited next iteration; don't let it be unhandled meanwhile
        }
        await this.paced(p.length);
        if (!after) {
          // the request's last piece: its `done` (get-queue.ts, written as this returns, in the
          // same turn) goes out in the same write. Nagle is off: a small file was two system
          // calls and two segments, its packet and its done
          this.socket.cork();
          process.nextTick(() => this.socket.uncork());
        }
        const ok = this.sendPiece(req.id, p, buf, req.source.packetSums?.(p.chunk) ?? null, m.chunkBytes);
        this.hooks.active();
        if (p.last) {
          open = -1;
          this.hooks.sent(m.cid, p.chunk);
        }
        if (!ok && !this.hooks.closed() && this.socket.writableLength >= DRAIN_AT_BYTES) {
          if (this.socket.writableCorked) this.socket.uncork(); // (what is held goes before we wait for it to drain)
          await this.drained();
        }
        p = after;
      }
      if (next) {
        const last = next;
        next = null;
        this.releaseBuffer(await last);
      }
    } finally {
      if (open >= 0) this.hooks.abandoned(m.cid, open);
      // a read still under way when we stopped early (a wait or a read failed): its buffer goes
      // back once that read is over, never while the file system may still write into it
      if (next) next.then((b) => this.releaseBuffer(b), () => {});
    }
  }

  /**
   * Request `req` sent by the kernel from the file's descriptor (kernel-send.ts): a complete file
   * whose packet sums were taken at hashing, so no byte of it passes through our memory. Pieces of
   * 1 MiB from the start (nothing of ours is pinned by a peer that does not read).
   */
  private async sendByKernel(req: RangeRequest, f: SourceReader, sendPiece: SendPiece, fd: number): Promise<void> {
    const m = req.source.manifest;
    const lent = f.lend!();
    if (!lent) throw new SwarmError(ERROR_CODES.FILE_CHANGED, 'the file is no longer open');
    const link: KernelLink = {
      socket: this.socket,
      socketFd: fd,
      sendPiece,
      gate: this.gate,
      blocked: (at) => this.hooks.blocked(at),
      closed: () => this.hooks.closed(),
    };
    this.heads ??= Buffer.allocUnsafe((READ_BYTES / PACKET_PAYLOAD_BYTES) * PACKET_HEAD_BYTES); // (pieces are at most READ_BYTES)
    let open = -1;
    try {
      for (const p of planPieces(req.from, req.to, m.size, m.chunkBytes, WARMUP_BYTES, pieceCap(this.upload))) {
        if (p.offset === p.chunk * m.chunkBytes) {
          await this.hooks.slot(req.id, m.cid, p.chunk);
          open = p.chunk;
        }
        if (req.cancelled || this.hooks.closed()) return;
        const sums = req.source.packetSums?.(p.chunk);
        if (!sums) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `content ${m.cid.slice(0, 16)}… changed while being served`);
        await this.paced(p.length);
        const before = f.checkUnchanged();
        if (before) await before;
        const first = (p.offset - p.chunk * m.chunkBytes) / PACKET_PAYLOAD_BYTES;
        await sendKernelPiece(link, this.heads, lent, {
          requestId: req.id,
          chunk: p.chunk,
          offset: p.offset,
          length: p.length,
          last: p.last,
          sums: sums.subarray(first, first + Math.ceil(p.length / PACKET_PAYLOAD_BYTES)),
        });
        this.bytesSent += p.length;
        this.hooks.active();
        // changed while the kernel sent: those bytes fail the receiver's sums or chunk hash;
        // nothing more of this file goes out (and the chunk is not counted as sent)
        const after = f.checkUnchanged();
        if (after) await after;
        if (p.last) {
          open = -1;
          this.hooks.sent(m.cid, p.chunk);
        }
      }
    } finally {
      lent.release();
      if (open >= 0) this.hooks.abandoned(m.cid, open);
    }
  }

  /** Under --max-upload, wait until `bytes` may go out. */
  private async paced(bytes: number): Promise<void> {
    const wait = this.upload?.delayFor(bytes, Date.now()) ?? 0;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  /** `sums`: the chunk's packet payload sums taken when it was hashed, or null (summed here). */
  private sendPiece(requestId: number, p: Piece, sb: SendBuffer, sums: Uint16Array | null, chunkBytes: number): boolean {
    const buf = sb.bytes;
    const first = (p.offset - p.chunk * chunkBytes) / PACKET_PAYLOAD_BYTES;
    const summed = (k: number, n: number) => {
      const payload = buf.subarray(k * SLOT + PACKET_HEAD_BYTES, k * SLOT + PACKET_HEAD_BYTES + n);
      return sb.arena ? sb.arena.sum16(payload) : sum16(payload);
    };
    const end = writePieceHeads(buf, SLOT, { requestId, ...p }, sums ? (k) => sums[first + k]! : summed);
    this.bytesSent += p.length;
    // given back once the socket took the bytes (or dropped them, closed): nothing touches them after
    return this.socket.write(buf.subarray(0, end), () => this.releaseBuffer(sb));
  }

  private drained(): Promise<void> {
    this.hooks.blocked(Date.now());
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private acquireBuffer(bytes: number): Promise<SendBuffer> {
    if (this.buffersOut < READ_BUFFERS) {
      this.buffersOut++;
      return Promise.resolve(sendBuffers.take(bytes));
    }
    return new Promise((resolve) => this.bufferWaiters.push(() => resolve(this.acquireBuffer(bytes))));
  }

  private releaseBuffer(sb: SendBuffer): void {
    if (!sendBuffers.give(sb)) return;
    this.buffersOut--;
    this.bufferWaiters.shift()?.();
  }

  /** The connection ended: wake whoever waits for a buffer (they see `closed` and stop). */
  destroy(): void {
    for (const w of this.bufferWaiters.splice(0)) w();
  }
}

/**
 * The largest piece under an upload limit: an eighth of a second's worth (whole packets, one at
 * least). A piece waits for its tokens before any of it goes out, so a 1 MiB piece at 768 KiB/s
 * was 1.3 s of silence, long enough for a client to take the peer for stalled.
 */
function pieceCap(upload: TokenBucket | null): number {
  if (!upload) return READ_BYTES;
  return Math.min(READ_BYTES, Math.max(PACKET_PAYLOAD_BYTES, Math.floor(upload.bytesPerSec / 8 / PACKET_PAYLOAD_BYTES) * PACKET_PAYLOAD_BYTES));
}

/**
 * The pieces of chunks [from, to) of a content of `size` bytes, in order: at most READ_BYTES each
 * (WARMUP_READ_BYTES while fewer than WARMUP_BYTES went out on the connection, counting from
 * `sentBefore`), never straddling a chunk boundary, and at most `maxBytes`. Lazy: a range is as
 * long as a client asks.
 */
function* planPieces(from: number, to: number, size: number, chunkBytes: number, sentBefore: number, maxBytes = READ_BYTES): Generator<Piece, void, void> {
  let planned = sentBefore;
  for (let c = from; c < to; c++) {
    const start = c * chunkBytes;
    const end = Math.min(size, start + chunkBytes);
    for (let at = start; at < end; ) {
      const length = Math.min(planned < WARMUP_BYTES ? WARMUP_READ_BYTES : READ_BYTES, maxBytes, end - at);
      yield { chunk: c, offset: at, length, last: at + length === end };
      at += length;
      planned += length;
    }
  }
}

/**
 * Fill the payload slots `views` from `position` on: one vectored read where the source has one
 * (a file: one syscall per piece), then single reads for whatever a short read left.
 */
async function readSlots(f: SourceReader, views: Buffer[], position: number, cid: string): Promise<void> {
  let got = f.readv ? await f.readv(views, position) : 0;
  let pos = position;
  for (const v of views) {
    if (got >= v.length) {
      got -= v.length;
      pos += v.length;
      continue;
    }
    let have = got;
    got = 0;
    while (have < v.length) {
      const n = await f.read(v, have, v.length - have, pos + have);
      if (n === 0) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `content ${cid.slice(0, 16)}… shrank while being served`);
      have += n;
    }
    pos += v.length;
  }
}
