/**
 * One incoming peer connection on `swarm serve`: answers list / manifest / get / cancel, and a
 * seed-002 plain-name File Request (legacy.ts).
 *
 *   socket ─► FrameDecoder ─► list, manifest: answered at once
 *                          └► get: queued ─► sender loop: read 1 MiB ─► 64 KiB packets ─► socket
 *                                            (next read overlaps the send; waits on 'drain')
 *
 * Memory per connection is bounded: at most READ_BUFFERS read buffers (each released when the
 * socket has flushed its last packet) and MAX_QUEUED_GETS queued requests. Bytes of a file
 * that changed since its manifest are never sent under the old content id.
 */
import type { Socket } from 'node:net';
import { ERROR_CODES, SwarmError, toWire, asSwarmError } from '../errors.js';
import { PACKET_PAYLOAD_BYTES } from '../constants.js';
import { FrameDecoder, encodeFrame, type Header } from '../protocol/frame.js';
import { encodePacketHead, FLAG_LAST_IN_CHUNK } from '../protocol/packet.js';
import { checkMessage } from '../protocol/messages.js';
import { encodeHashes } from '../manifest.js';
import { chunkCount } from '../chunking.js';
import { OpenFiles } from './open-files.js';
import type { Library } from '../share/library.js';
import type { Log } from '../log.js';
import { serveLegacyRequest } from './legacy.js';
import type { TokenBucket } from '../scheduling/token-bucket.js';
import { arena, type ChecksumArena } from '../protocol/checksum-wasm.js';
import { sum16 } from '../protocol/checksum.js';

const READ_BYTES = 1 << 20;
const READ_BUFFERS = 4;
export const MAX_QUEUED_GETS = 1024;

interface GetRequest {
  id: number;
  name: string;
  cid: string;
  from: number;
  to: number;
  cancelled: boolean;
}

export class PeerSession {
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
  readonly remote: string;
  bytesSent = 0;
  private readonly openFiles: OpenFiles;

  constructor(
    private readonly socket: Socket,
    private readonly library: Library,
    private readonly log: Log,
    private readonly onEnd: (s: PeerSession) => void,
    private readonly upload: TokenBucket | null = null,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.openFiles = new OpenFiles(library);
    socket.setNoDelay(true);
    this.decoder = new FrameDecoder({
      onMessage: (h, body) => this.onMessage(h, body),
      onPacket: () => {
        throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'peers do not send data packets to a server');
      },
    });
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
  }

  /** True while a get is being sent or queued: a graceful shutdown waits for these. */
  get busy(): boolean {
    return this.sending || this.queue.length > 0;
  }

  private onData(d: Buffer): void {
    if (this.mode === 'unknown') {
      this.mode = d[0] === 0 ? 'framed' : 'legacy';
      if (this.mode === 'legacy') {
        this.socket.removeAllListeners('data');
        this.sending = true;
        serveLegacyRequest(this.socket, d, this.library, this.log).finally(() => {
          this.sending = false;
          this.destroy();
        });
        return;
      }
    }
    try {
      this.decoder.push(d);
    } catch (err) {
      const e = asSwarmError(err);
      this.log('peer-protocol-error', { peer: this.remote, code: e.code, reason: e.message });
      this.send({ t: 'error', code: e.code, message: e.message });
      this.socket.end();
      this.destroy();
    }
  }

  private send(h: Header, body?: Uint8Array): boolean {
    if (this.closed) return false;
    let ok = true;
    for (const b of encodeFrame(h, body)) ok = this.socket.write(b);
    return ok;
  }

  private onMessage(h: Header, _body: Buffer): void {
    checkMessage('peerRequest', h);
    const id = h.id as number | undefined;
    switch (h.t) {
      case 'list':
        this.send({ t: 'files', id, files: this.library.files() });
        return;
      case 'manifest': {
        const name = h.name as string;
        const m = this.library.manifest(name);
        if (!m) {
          this.send({ t: 'error', id, code: ERROR_CODES.NOT_FOUND, message: `no such file: ${name}` });
          return;
        }
        this.send({ t: 'manifest-ok', id, name: m.name, size: m.size, mtime: m.mtime, chunkBytes: m.chunkBytes, cid: m.cid, chunks: m.hashes.length }, encodeHashes(m.hashes));
        return;
      }
      case 'get': {
        if (this.queue.length >= MAX_QUEUED_GETS) {
          this.send({ t: 'error', id, code: ERROR_CODES.LIMIT, message: `more than ${MAX_QUEUED_GETS} requests queued` });
          return;
        }
        this.queue.push({ id: id!, name: h.name as string, cid: h.cid as string, from: h.from as number, to: h.to as number, cancelled: false });
        if (!this.sending) void this.sendLoop();
        return;
      }
      case 'cancel': {
        for (const r of this.queue) if (r.id === id) r.cancelled = true;
        const cur = this.current;
        if (cur && cur.id === id) cur.cancelled = true;
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
          if (e.code === ERROR_CODES.PATH_ESCAPE) this.log('refused', { peer: this.remote, name: req.name, reason: e.message });
          this.send({ t: 'error', id: req.id, code: e.code, message: e.message });
        }
      }
    } finally {
      this.current = null;
      this.sending = false;
    }
  }

  private async sendRange(req: GetRequest): Promise<void> {
    const m = this.library.manifest(req.name);
    const f = await this.openFiles.get(req.name, req.cid);
    if (!m) throw new SwarmError(ERROR_CODES.NOT_FOUND, `no such file: ${req.name}`);
    const chunks = chunkCount(m.size, m.chunkBytes);
    if (req.from >= req.to || req.to > chunks) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `chunk range [${req.from}, ${req.to}) outside 0..${chunks}`);
    // pieces of at most READ_BYTES, never straddling a chunk boundary
    const pieces: { chunk: number; offset: number; length: number; last: boolean }[] = [];
    for (let c = req.from; c < req.to; c++) {
      const start = c * m.chunkBytes;
      const end = Math.min(m.size, start + m.chunkBytes);
      for (let at = start; at < end; at += READ_BYTES) {
        const length = Math.min(READ_BYTES, end - at);
        pieces.push({ chunk: c, offset: at, length, last: at + length === end });
      }
    }
    const read = async (i: number) => {
      const p = pieces[i]!;
      const buf = await this.acquireBuffer();
      let got = 0;
      try {
        while (got < p.length) {
          const { bytesRead } = await f.fh.read(buf, got, p.length - got, p.offset + got);
          if (bytesRead === 0) throw new SwarmError(ERROR_CODES.FILE_CHANGED, `${req.name} shrank while being served`);
          got += bytesRead;
        }
        // checked after every read, so bytes read after a change are never sent
        await this.openFiles.checkUnchanged(req.name, f);
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
      if (this.upload) {
        const wait = this.upload.delayFor(pieces[i]!.length, Date.now());
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const ok = this.sendPiece(req.id, pieces[i]!, buf);
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

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.queue) r.cancelled = true;
    if (this.current) this.current.cancelled = true;
    this.socket.destroy();
    for (const w of this.bufferWaiters.splice(0)) w();
    void this.openFiles.closeAll();
    this.onEnd(this);
  }
}
