/**
 * One incoming peer connection: hello, then list / stat / manifest / get / cancel / interest, or
 * seed 002's plain-name File Request (legacy.ts).
 *
 *   socket ─► FrameDecoder ─► hello (first, within the handshake deadline)
 *                          ├► list, stat, manifest, interest: answered at once
 *                          └► get: queued ─► sender loop: read 1 MiB ─► 64 KiB packets ─► socket
 *                                            (next read overlaps the send; waits on 'drain';
 *                                            256 KiB reads for a connection's first 16 MiB)
 *
 * Everything the remote side can make us hold is bounded: replies (when the socket holds more
 * than REPLY_WINDOW_BYTES unsent, the decoder and the socket pause, so a client that does not
 * read stops being read), queued requests (MAX_QUEUED_GETS), read buffers (READ_BUFFERS of
 * 1 MiB, two in use at a time; a client that never reads pins two 256 KiB pieces), open files (MAX_OPEN_READERS, closed on every path), and the time it may spend in each
 * state (net/guard.ts). Content is served by content id from a SourceIndex, only chunks the
 * source has verified, and bytes of a file that changed since it was hashed are never sent.
 */
import type { Socket } from 'node:net';
import { ERROR_CODES, SwarmError, toWire, asSwarmError } from '../errors.js';
import { PACKET_PAYLOAD_BYTES } from '../constants.js';
import { FrameDecoder, encodeFrame, type Header } from '../protocol/frame.js';
import { encodePacketHead, FLAG_LAST_IN_CHUNK } from '../protocol/packet.js';
import { checkHello, decodeMessage, helloMessage, type Hello, type PeerRequest } from '../protocol/messages.js';
import { chunksOf } from '../manifest.js';
import type { Log } from '../log.js';
import { serveLegacyRequest } from './legacy.js';
import type { TokenBucket } from '../scheduling/token-bucket.js';
import { arena, type ChecksumArena } from '../protocol/checksum-wasm.js';
import { sum16 } from '../protocol/checksum.js';
import type { GuardedConnection, ServerLimits } from '../net/guard.js';
import type { HelloFields } from '../protocol/messages.js';
import type { ChunkSource, SourceIndex, SourceReader } from './source.js';

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
export const MAX_QUEUED_GETS = 1024;
/** Unsent reply bytes at which we stop reading the client's requests. */
export const REPLY_WINDOW_BYTES = 256 << 10;
/** Largest request frame: requests are small JSON headers with no body. */
export const MAX_REQUEST_HEADER_BYTES = 16 << 10;
const MAX_OPEN_READERS = 16;
/**
 * When the server is full, a connection whose socket has not taken what we wrote for this long
 * may be evicted (longest blocked first). A reader taking ≥ 2 MiB/s never waits this long for a
 * piece (1 MiB at most); one that reads nothing has waited seconds by the time anyone needs its slot.
 */
const STUCK_EVICT_MS = 500;
/** Files per `files` page, and the JSON bytes a page may reach before it is cut. */
const LIST_PAGE_FILES = 1000;
const LIST_PAGE_BYTES = 256 << 10;

interface GetRequest {
  id: number;
  source: ChunkSource;
  from: number;
  to: number;
  cancelled: boolean;
}

export interface SessionContext {
  sources: SourceIndex;
  log: Log;
  upload: TokenBucket | null;
  hello: HelloFields;
}

export class PeerSession implements GuardedConnection {
  private readonly decoder: FrameDecoder;
  private readonly queue: GetRequest[] = [];
  private current: GetRequest | null = null;
  private sending = false;
  private closed = false;
  private readonly freeBuffers: Buffer[] = [];
  /** Read buffers live in wasm memory, so outgoing payloads are checksummed where they were read. */
  private readArena: ChecksumArena | null | undefined;
  private buffersOut = 0;
  private bufferWaiters: (() => void)[] = [];
  private mode: 'unknown' | 'framed' | 'legacy' = 'unknown';
  private readonly readers = new Map<string, Promise<SourceReader>>();
  readonly remote: string;
  readonly ip: string;
  readonly since: number;
  remoteHello: Hello | null = null;
  bytesSent = 0;
  /** Clocks read by the guard (net/guard.ts). */
  private lastActivityAt: number;
  private partialSince = 0;
  private blockedSince = 0;
  private pausedForReplies = false;

  constructor(
    private readonly socket: Socket,
    ip: string,
    private readonly ctx: SessionContext,
    private readonly onEnd: (s: PeerSession, reason: string) => void,
  ) {
    this.ip = ip;
    this.remote = `${ip}:${socket.remotePort}`;
    this.since = this.lastActivityAt = Date.now();
    socket.setNoDelay(true);
    this.decoder = new FrameDecoder(
      {
        onMessage: (h) => this.onMessage(h),
        onPacket: () => {
          throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'peers do not send data packets to a server');
        },
      },
      { maxHeaderBytes: MAX_REQUEST_HEADER_BYTES, maxBodyBytes: 0 },
    );
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => this.destroy('socket error'));
    socket.on('close', () => this.destroy('closed by peer'));
  }

  /** True while a get is being sent or queued: a graceful shutdown waits for these. */
  get busy(): boolean {
    return this.sending || this.queue.length > 0;
  }

  get openReaders(): number {
    return this.readers.size;
  }

  get bufferedRequestBytes(): number {
    return this.decoder.buffered;
  }

  /** Reply and data bytes written but not yet taken by the kernel (the reply window, or a piece). */
  get unsentReplyBytes(): number {
    return this.socket.writableLength;
  }

  overdue(now: number, limits: ServerLimits): string | null {
    if (this.mode === 'legacy') return this.blockedSince && now - this.blockedSince > limits.sendStallMs ? 'stopped reading the file it asked for' : null;
    if (!this.remoteHello && now - this.since > limits.handshakeMs) return `no hello within ${limits.handshakeMs} ms`;
    if (this.partialSince && now - this.partialSince > limits.frameMs) return `a request took longer than ${limits.frameMs} ms to arrive`;
    if (this.blockedSince && now - this.blockedSince > limits.sendStallMs) return `did not read replies for ${limits.sendStallMs} ms`;
    if (!this.busy && now - this.lastActivityAt > limits.idleMs) return `idle for ${limits.idleMs} ms`;
    return null;
  }

  evictRank(now: number): number {
    if (!this.remoteHello && this.mode !== 'legacy') return 4e12 + (now - this.since);
    if (this.blockedSince && now - this.blockedSince > STUCK_EVICT_MS) return 3e12 + (now - this.blockedSince);
    if (this.partialSince && now - this.partialSince > 1_000) return 2e12 + (now - this.partialSince);
    if (!this.busy) return 1e12 + (now - this.lastActivityAt);
    return 0;
  }

  private onData(d: Buffer): void {
    if (this.mode === 'unknown') {
      this.mode = d[0] === 0 ? 'framed' : 'legacy';
      if (this.mode === 'legacy') {
        this.socket.removeAllListeners('data');
        this.sending = true;
        serveLegacyRequest(this.socket, d, this.ctx.sources, this.ctx.log, (blocked) => {
          this.blockedSince = blocked ? Date.now() : 0;
        }).finally(() => {
          this.sending = false;
          this.destroy('legacy request served');
        });
        return;
      }
    }
    try {
      this.decoder.push(d);
    } catch (err) {
      this.failProtocol(err);
      return;
    }
    this.trackPartial();
  }

  /**
   * The frame deadline runs while a request is still arriving. While we are paused for replies,
   * what the decoder holds is waiting on us, not on the client (a fast pipeliner that reads
   * slowly), so the clock stops, and restarts from zero once we read again.
   */
  private trackPartial(): void {
    if (this.pausedForReplies || this.decoder.idle) this.partialSince = 0;
    else this.partialSince ||= Date.now();
  }

  private failProtocol(err: unknown): void {
    const e = asSwarmError(err);
    this.ctx.log('peer-protocol-error', { peer: this.remote, code: e.code, reason: e.message });
    this.send({ t: 'error', code: e.code, message: e.message });
    this.socket.end();
    this.destroy(e.message);
  }

  private send(h: Header, body?: Uint8Array): void {
    if (this.closed) return;
    for (const b of encodeFrame(h, body)) this.socket.write(b);
    this.checkWindow();
  }

  /** Replies are piling up unread: stop decoding and reading until the socket drains. */
  private checkWindow(): void {
    if (this.pausedForReplies || this.socket.writableLength <= REPLY_WINDOW_BYTES) return;
    this.pausedForReplies = true;
    this.blockedSince ||= Date.now();
    this.partialSince = 0;
    this.decoder.pause();
    this.socket.pause();
  }

  private onDrain(): void {
    this.blockedSince = 0;
    this.lastActivityAt = Date.now();
    if (!this.pausedForReplies) return;
    this.pausedForReplies = false;
    this.socket.resume();
    try {
      this.decoder.resume();
      this.trackPartial();
    } catch (err) {
      this.failProtocol(err);
    }
  }

  private onMessage(h: Header): void {
    const m = decodeMessage('peerRequest', h);
    this.lastActivityAt = Date.now();
    if (!this.remoteHello) {
      if (m.t !== 'hello') {
        throw new SwarmError(ERROR_CODES.VERSION, `send hello first: this peer speaks swarm protocol 2 (an older swarm sent "${h.t}"); run the same swarm version on both sides`);
      }
      checkHello(m, `peer ${this.remote}`);
      this.remoteHello = m;
      this.send(helloMessage(this.ctx.hello));
      return;
    }
    this.handle(m);
  }

  private handle(m: PeerRequest | { t: 'unknown'; type: string; id?: number }): void {
    switch (m.t) {
      case 'hello':
        return; // repeated: ignored
      case 'unknown':
        // a newer peer's request: refuse it clearly if it expects an answer, else skip it
        if (m.id !== undefined) this.send({ t: 'error', id: m.id, code: ERROR_CODES.UNKNOWN_MESSAGE, message: `unknown request "${m.type}"` });
        return;
      case 'list': {
        const limit = Math.min(m.limit ?? LIST_PAGE_FILES, LIST_PAGE_FILES);
        const page = this.ctx.sources.list(m.after, limit);
        let bytes = 0;
        let cut = page.files.length;
        for (let i = 0; i < page.files.length; i++) {
          bytes += page.files[i]!.name.length * 2 + 160;
          if (bytes > LIST_PAGE_BYTES) {
            cut = Math.max(1, i);
            break;
          }
        }
        const files = page.files.slice(0, cut);
        const next = cut < page.files.length ? files[files.length - 1]!.name : page.next;
        this.send({ t: 'files', id: m.id, files, ...(next !== undefined ? { next } : {}) });
        return;
      }
      case 'stat': {
        const f = this.ctx.sources.stat(m.name);
        if (!f) this.send({ t: 'error', id: m.id, code: ERROR_CODES.NOT_FOUND, message: `no such file: ${m.name}` });
        else this.send({ t: 'entry', id: m.id, ...f });
        return;
      }
      case 'manifest': {
        const src = this.ctx.sources.byCid(m.cid);
        if (!src) {
          this.send({ t: 'error', id: m.id, code: ERROR_CODES.NOT_FOUND, message: `no content ${m.cid.slice(0, 16)}… here` });
          return;
        }
        const mf = src.manifest;
        this.send({ t: 'manifest-ok', id: m.id, cid: mf.cid, size: mf.size, chunkBytes: mf.chunkBytes, chunks: chunksOf(mf) }, mf.hashes);
        return;
      }
      case 'interest': {
        const src = this.ctx.sources.byCid(m.cid);
        if (src) this.send({ t: 'bitfield', cid: m.cid, have: Buffer.from(src.bitfield()).toString('base64'), complete: src.complete });
        return;
      }
      case 'get': {
        const refuse = (code: string, message: string) => this.send({ t: 'error', id: m.id, code, message });
        if (this.queue.length >= MAX_QUEUED_GETS) return refuse(ERROR_CODES.LIMIT, `more than ${MAX_QUEUED_GETS} requests queued`);
        const src = this.ctx.sources.byCid(m.cid);
        if (!src) return refuse(ERROR_CODES.NOT_FOUND, `no content ${m.cid.slice(0, 16)}… here`);
        const chunks = chunksOf(src.manifest);
        if (m.from >= m.to || m.to > chunks) return refuse(ERROR_CODES.BAD_MESSAGE, `chunk range [${m.from}, ${m.to}) outside 0..${chunks}`);
        for (let c = m.from; c < m.to; c++) {
          if (!src.has(c)) return refuse(ERROR_CODES.NOT_HAVE, `chunk ${c} is not verified here yet`);
        }
        this.queue.push({ id: m.id, source: src, from: m.from, to: m.to, cancelled: false });
        if (!this.sending) void this.sendLoop();
        return;
      }
      case 'cancel': {
        for (const r of this.queue) if (r.id === m.id) r.cancelled = true;
        const cur = this.current;
        if (cur && cur.id === m.id) cur.cancelled = true;
        return;
      }
    }
  }

  private async sendLoop(): Promise<void> {
    this.sending = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const req = this.queue.shift()!;
        if (req.cancelled) continue;
        this.current = req;
        try {
          await this.sendRange(req);
          if (!req.cancelled) this.send({ t: 'done', id: req.id });
        } catch (err) {
          const e = toWire(err);
          if (e.code === ERROR_CODES.PATH_ESCAPE || e.code === ERROR_CODES.FILE_CHANGED) this.ctx.log('refused', { peer: this.remote, cid: req.source.manifest.cid, reason: e.message });
          this.forgetReader(req.source.manifest.cid);
          this.send({ t: 'error', id: req.id, code: e.code, message: e.message });
        }
      }
    } finally {
      this.current = null;
      this.sending = false;
      this.lastActivityAt = Date.now();
    }
  }

  /** The open reader of a source: opened once per connection, closed when the session ends. */
  private reader(src: ChunkSource): Promise<SourceReader> {
    const cid = src.manifest.cid;
    let r = this.readers.get(cid);
    if (!r) {
      if (this.readers.size >= MAX_OPEN_READERS) this.forgetReader(this.readers.keys().next().value!);
      r = src.open().then((reader) => {
        // the session may have ended while the file was opening: never leave the handle behind
        if (this.closed || this.readers.get(cid) !== r) void reader.close();
        return reader;
      });
      r.catch(() => this.readers.get(cid) === r && this.readers.delete(cid));
      this.readers.set(cid, r);
    }
    return r;
  }

  private forgetReader(cid: string): void {
    const r = this.readers.get(cid);
    if (!r) return;
    this.readers.delete(cid);
    r.then((reader) => reader.close(), () => {});
  }

  private async sendRange(req: GetRequest): Promise<void> {
    const m = req.source.manifest;
    const f = await this.reader(req.source);
    f.checkUnchanged();
    // pieces of at most READ_BYTES (smaller while warming up), never straddling a chunk boundary
    const pieces: { chunk: number; offset: number; length: number; last: boolean }[] = [];
    let planned = this.bytesSent;
    for (let c = req.from; c < req.to; c++) {
      const start = c * m.chunkBytes;
      const end = Math.min(m.size, start + m.chunkBytes);
      for (let at = start; at < end; ) {
        const length = Math.min(planned < WARMUP_BYTES ? WARMUP_READ_BYTES : READ_BYTES, end - at);
        pieces.push({ chunk: c, offset: at, length, last: at + length === end });
        at += length;
        planned += length;
      }
    }
    const read = async (i: number) => {
      const p = pieces[i]!;
      const buf = await this.acquireBuffer();
      let got = 0;
      try {
        if (this.closed) throw new SwarmError(ERROR_CODES.PEER_CLOSED, 'connection closed');
        while (got < p.length) {
          const n = await f.read(buf, got, p.length - got, p.offset + got);
          if (n === 0) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `content ${m.cid.slice(0, 16)}… shrank while being served`);
          got += n;
        }
        // checked after every read, so bytes read after a change are never sent
        f.checkUnchanged();
      } catch (err) {
        this.releaseBuffer(buf);
        throw err;
      }
      return buf;
    };
    let next: Promise<Buffer> | null = read(0);
    for (let i = 0; i < pieces.length; i++) {
      const buf = await next!;
      next = null;
      if (req.cancelled || this.closed) {
        this.releaseBuffer(buf);
        return;
      }
      if (i + 1 < pieces.length) {
        next = read(i + 1);
        next.catch(() => {}); // awaited next iteration; don't let it be unhandled meanwhile
      }
      if (this.ctx.upload) {
        const wait = this.ctx.upload.delayFor(pieces[i]!.length, Date.now());
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const ok = this.sendPiece(req.id, pieces[i]!, buf);
      this.lastActivityAt = Date.now();
      if (!ok && !this.closed) await this.drained();
    }
    if (next) this.releaseBuffer(await next);
  }

  private sendPiece(requestId: number, p: { chunk: number; offset: number; length: number; last: boolean }, buf: Buffer): boolean {
    let ok = true;
    this.socket.cork();
    for (let at = 0; at < p.length; at += PACKET_PAYLOAD_BYTES) {
      const n = Math.min(PACKET_PAYLOAD_BYTES, p.length - at);
      const payload = buf.subarray(at, at + n);
      const final = at + n >= p.length;
      const payloadSum = this.readArena?.owns(payload) ? this.readArena.sum16(payload) : sum16(payload);
      const head = encodePacketHead({ flags: final && p.last ? FLAG_LAST_IN_CHUNK : 0, requestId, chunk: p.chunk, offset: p.offset + at }, payload, payloadSum);
      this.socket.write(head);
      ok = final ? this.socket.write(payload, () => this.releaseBuffer(buf)) : this.socket.write(payload);
    }
    this.socket.uncork();
    this.bytesSent += p.length;
    return ok;
  }

  private drained(): Promise<void> {
    this.blockedSince ||= Date.now();
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

  private acquireBuffer(): Promise<Buffer> {
    const free = this.freeBuffers.pop();
    if (free) {
      this.buffersOut++;
      return Promise.resolve(free);
    }
    if (this.buffersOut < READ_BUFFERS) {
      if (this.readArena === undefined) this.readArena = arena(READ_BUFFERS * READ_BYTES);
      const slot = this.buffersOut++;
      return Promise.resolve(this.readArena ? this.readArena.bytes.subarray(slot * READ_BYTES, (slot + 1) * READ_BYTES) : Buffer.allocUnsafeSlow(READ_BYTES));
    }
    return new Promise((resolve) => this.bufferWaiters.push(() => resolve(this.acquireBuffer())));
  }

  private releaseBuffer(buf: Buffer): void {
    this.buffersOut--;
    this.freeBuffers.push(buf);
    this.bufferWaiters.shift()?.();
  }

  /** End the connection (idempotent): cancels its requests, closes its files. */
  destroy(reason = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.queue) r.cancelled = true;
    this.queue.length = 0;
    if (this.current) this.current.cancelled = true;
    this.socket.destroy();
    for (const w of this.bufferWaiters.splice(0)) w();
    for (const cid of [...this.readers.keys()]) this.forgetReader(cid);
    this.onEnd(this, reason);
  }
}
