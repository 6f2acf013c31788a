/**
 * One connection to one seeding peer, fetching the chunk ranges it is told to. It implements the
 * framed client's handler: each data packet is checked (belongs to a live request, in order,
 * inside its chunk, checksum good) and copied into the buffer of its chunk; a complete chunk is
 * handed up with its buffer (transferred). A bad packet spoils its chunk: the chunk is dropped
 * and a strike is reported; the coordinator decides what happens to the peer.
 */
import { FramedClient } from '../net/framed-client.js';
import { ERROR_CODES, SwarmError, toWire, type WireError } from '../errors.js';
import { copyPieces, verifyCopied, type PacketHeader } from '../protocol/packet.js';
import type { Header } from '../protocol/frame.js';
import type { FromPeerHost } from './thread-messages.js';

export interface BufferSource {
  acquire(bytes: number): Uint8Array;
  release(buf: Uint8Array): void;
}

/** Milliseconds spent copying payloads and checking their checksums (shared by a host's fetchers). */
export interface FetchTimes {
  copyMs: number;
  checksumMs: number;
}

interface Assembly {
  buf: Uint8Array | null;
  received: number;
  length: number;
  bad: boolean;
}

interface Request {
  from: number;
  to: number;
  size: number;
  chunkBytes: number;
  chunks: Map<number, Assembly>;
}

export class PeerFetcher {
  private readonly client: FramedClient;
  private readonly requests = new Map<number, Request>();
  private pendingBytes = 0;
  private closed = false;

  constructor(
    readonly peerId: number,
    host: string,
    port: number,
    private readonly buffers: BufferSource,
    private readonly post: (m: FromPeerHost, transfer?: ArrayBuffer[]) => void,
    private readonly times: FetchTimes = { copyMs: 0, checksumMs: 0 },
    connectTimeoutMs = 5_000,
  ) {
    this.client = new FramedClient(
      host,
      port,
      {
        onPacket: (h, raw, payload) => this.onPacket(h, raw, payload),
        onMessage: (h) => this.onMessage(h),
        onClose: (err) => this.onClose(err),
      },
      connectTimeoutMs,
    );
  }

  async connect(): Promise<void> {
    await this.client.connect();
    this.post({ type: 'connected', peerId: this.peerId });
  }

  get(reqId: number, name: string, cid: string, from: number, to: number, size: number, chunkBytes: number): void {
    this.requests.set(reqId, { from, to, size, chunkBytes, chunks: new Map() });
    this.client.write({ t: 'get', id: reqId, name, cid, from, to });
  }

  cancel(reqId: number): void {
    const r = this.requests.get(reqId);
    if (!r) return;
    this.requests.delete(reqId);
    this.dropAssemblies(r);
    this.client.write({ t: 'cancel', id: reqId });
  }

  /** Bytes received since the last call (for rate reports). */
  takeBytes(): number {
    const n = this.pendingBytes;
    this.pendingBytes = 0;
    return n;
  }

  private strike(reqId: number, chunk: number, a: Assembly | undefined, error: WireError): void {
    if (a) {
      a.bad = true;
      if (a.buf) this.buffers.release(a.buf);
      a.buf = null;
    }
    this.post({ type: 'strike', peerId: this.peerId, reqId, chunk, error });
  }

  private onPacket(h: PacketHeader, raw: Buffer, payload: Buffer[]): void {
    const r = this.requests.get(h.requestId);
    this.pendingBytes += h.length;
    if (!r) return; // a request we cancelled: its last packets may still arrive
    if (h.chunk < r.from || h.chunk >= r.to) {
      this.strike(h.requestId, -1, undefined, toWire(new SwarmError(ERROR_CODES.BAD_PACKET, `packet for chunk ${h.chunk} outside the requested ${r.from}..${r.to - 1}`)));
      this.client.destroy(new SwarmError(ERROR_CODES.BAD_PACKET, 'peer sent chunks it was not asked for'));
      return;
    }
    let a = r.chunks.get(h.chunk);
    const start = h.chunk * r.chunkBytes;
    if (!a) {
      a = { buf: null, received: 0, length: Math.min(r.chunkBytes, r.size - start), bad: false };
      r.chunks.set(h.chunk, a);
    }
    if (a.bad) return;
    const rel = h.offset - start;
    if (rel !== a.received || rel + h.length > a.length) {
      this.strike(h.requestId, h.chunk, a, toWire(new SwarmError(ERROR_CODES.BAD_PACKET, `packet at offset ${h.offset} does not continue chunk ${h.chunk}`)));
      return;
    }
    a.buf ??= this.buffers.acquire(r.chunkBytes);
    const t0 = performance.now();
    const end = copyPieces(payload, a.buf, rel);
    const t1 = performance.now();
    const good = verifyCopied(h, raw, a.buf, rel, end);
    this.times.copyMs += t1 - t0;
    this.times.checksumMs += performance.now() - t1;
    if (!good) {
      this.strike(h.requestId, h.chunk, a, toWire(new SwarmError(ERROR_CODES.BAD_CHECKSUM, `bad packet checksum in chunk ${h.chunk}`)));
      return;
    }
    a.received += h.length;
    if (a.received === a.length) {
      const buf = a.buf;
      a.buf = null;
      r.chunks.delete(h.chunk);
      this.post({ type: 'chunk', peerId: this.peerId, reqId: h.requestId, chunk: h.chunk, bytes: buf, length: a.length }, [buf.buffer as ArrayBuffer]);
    }
  }

  private onMessage(h: Header): void {
    if (h.t !== 'done' && h.t !== 'error') return;
    const id = h.id as number;
    const r = this.requests.get(id);
    if (!r) return;
    this.requests.delete(id);
    // zero-length chunks (0-byte files have none; this is for completeness) and leftovers
    this.dropAssemblies(r);
    if (h.t === 'done') this.post({ type: 'done', peerId: this.peerId, reqId: id });
    else this.post({ type: 'done', peerId: this.peerId, reqId: id, error: { code: h.code as WireError['code'], message: String(h.message) } });
  }

  private dropAssemblies(r: Request): void {
    for (const a of r.chunks.values()) if (a.buf) this.buffers.release(a.buf);
    r.chunks.clear();
  }

  private onClose(err: SwarmError | null): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.requests.values()) this.dropAssemblies(r);
    this.requests.clear();
    this.post({ type: 'closed', peerId: this.peerId, ...(err ? { error: toWire(err) } : {}) });
  }

  destroy(): void {
    this.client.destroy();
  }
}
