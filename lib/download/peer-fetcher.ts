/**
 * One connection to one holder, fetching the chunk ranges it is told to. It implements the
 * framed client's streaming handler: each data packet is checked as it starts (belongs to a live
 * request, in order, inside its chunk), its payload is copied into the buffer of its chunk as the
 * bytes arrive, and its checksum is verified over that copy when it ends; a complete chunk is
 * handed up with its buffer (transferred). A bad packet spoils its chunk: the chunk is dropped
 * and a strike is reported; the coordinator decides what happens to the peer. Bytes of packets
 * that belong to no live request are counted as junk, so a peer cannot look busy by flooding.
 */
import { FramedClient, READ_BUFFER_BYTES } from '../net/framed-client.js';
import { arena, pieceSum, type ChecksumArena } from '../protocol/checksum-wasm.js';
import { add16 } from '../protocol/checksum.js';
import { ERROR_CODES, SwarmError, toWire, type ErrorCode, type WireError } from '../errors.js';
import { packetChecksumOk, type PacketHeader } from '../protocol/packet.js';
import { sum16 } from '../protocol/checksum.js';
import type { HelloFields, PeerReply } from '../protocol/messages.js';
import { checkAddresses } from '../protocol/entries.js';
import type { FromPeerHost } from './thread-messages.js';

/** Chunk indexes taken from one `have` message; more is a protocol error. */
const MAX_HAVE_CHUNKS = 65_536;
/** Addresses taken from one `peers` message. */
const MAX_PEX_PEERS = 100;

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ERROR_CODES));
const isErrorCode = (c: string): c is ErrorCode => KNOWN_CODES.has(c);

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
  /** Its first packet arrived (told once: the coordinator no longer moves it elsewhere). */
  started: boolean;
}

export class PeerFetcher {
  private readonly client: FramedClient;
  /** The socket's read buffer, in wasm memory: pieces are checksummed where they land. */
  private readonly readArena: ChecksumArena | null = arena(READ_BUFFER_BYTES);
  private readonly requests = new Map<number, Request>();
  private pendingBytes = 0;
  private junkBytes = 0;
  private closed = false;

  constructor(
    readonly peerId: number,
    host: string,
    port: number,
    /** The content fetched on this connection, and its chunk count (to check bitfields). */
    readonly cid: string,
    private readonly chunks: number,
    hello: HelloFields,
    /** What we hold (told in `interest`, kept current by `have`). */
    private readonly mine: Uint8Array,
    private readonly buffers: BufferSource,
    private readonly post: (m: FromPeerHost, transfer?: ArrayBuffer[]) => void,
    private readonly times: FetchTimes = { copyMs: 0, checksumMs: 0 },
    connectTimeoutMs = 5_000,
  ) {
    this.client = new FramedClient(host, port, {
      hello,
      side: 'peerReply',
      handler: {
        onPacketStart: (h, headerSum) => this.onPacketStart(h, headerSum),
        onPacketData: (h, piece, at) => this.onPacketData(h, piece, at),
        onPacketEnd: (h) => this.onPacketEnd(h),
        onMessage: (m) => this.onMessage(m),
        onHello: (h) => {
          this.post({ type: 'hello', peerId: this.peerId, peer: h.peer, listen: h.listen ?? null });
          this.client.write({ t: 'interest', cid: this.cid, have: Buffer.from(this.mine).toString('base64') });
        },
        onClose: (err) => this.onClose(err),
      },
      timeoutMs: connectTimeoutMs,
      ...(this.readArena ? { readBuffer: this.readArena.bytes } : {}),
    });
  }

  async connect(): Promise<void> {
    await this.client.connect();
    this.post({ type: 'connected', peerId: this.peerId });
  }

  get(reqId: number, cid: string, from: number, to: number, size: number, chunkBytes: number): void {
    this.requests.set(reqId, { from, to, size, chunkBytes, chunks: new Map(), started: false });
    this.client.write({ t: 'get', id: reqId, cid, from, to });
  }

  /** Tell the peer which chunks we newly have (it frees upload slots, and learns a source). */
  have(chunks: number[]): void {
    for (const c of chunks) if (c >= 0 && c < this.chunks) this.mine[c >> 3]! |= 1 << (c & 7);
    this.client.write({ t: 'have', cid: this.cid, chunks });
  }

  cancel(reqId: number): void {
    const r = this.requests.get(reqId);
    if (!r) return;
    this.requests.delete(reqId);
    this.dropAssemblies(r);
    this.client.write({ t: 'cancel', id: reqId });
  }

  /** Bytes received since the last call, and how many of them were junk (for rate reports). */
  takeBytes(): { n: number; junk: number } {
    const r = { n: this.pendingBytes, junk: this.junkBytes };
    this.pendingBytes = 0;
    this.junkBytes = 0;
    return r;
  }

  private strike(reqId: number, chunk: number, a: Assembly | undefined, error: WireError): void {
    if (a) {
      a.bad = true;
      if (a.buf) this.buffers.release(a.buf);
      a.buf = null;
    }
    this.post({ type: 'strike', peerId: this.peerId, reqId, chunk, error });
  }

  // The packet being received: where its payload goes. One record, reused for every packet (no
  // allocation per packet); `a` is null while a packet is being skipped.
  private readonly cur: { reqId: number; chunk: number; a: Assembly | null; rel: number; headerSum: number; sum: number } = { reqId: 0, chunk: 0, a: null, rel: 0, headerSum: 0, sum: 0 };

  private onPacketStart(h: PacketHeader, headerSum: number): void {
    this.cur.a = null;
    this.pendingBytes += h.length;
    const r = this.requests.get(h.requestId);
    if (!r) {
      // a request we cancelled may still send a few packets; anything else is junk
      this.junkBytes += h.length;
      return;
    }
    if (h.chunk < r.from || h.chunk >= r.to) {
      this.strike(h.requestId, -1, undefined, toWire(new SwarmError(ERROR_CODES.BAD_PACKET, `packet for chunk ${h.chunk} outside the requested ${r.from}..${r.to - 1}`)));
      this.client.destroy(new SwarmError(ERROR_CODES.BAD_PACKET, 'peer sent chunks it was not asked for'));
      return;
    }
    if (!r.started) {
      r.started = true;
      this.post({ type: 'started', peerId: this.peerId, reqId: h.requestId });
    }
    let a = r.chunks.get(h.chunk);
    const start = h.chunk * r.chunkBytes;
    if (!a) {
      a = { buf: null, received: 0, length: Math.min(r.chunkBytes, r.size - start), bad: false };
      r.chunks.set(h.chunk, a);
    }
    if (a.bad) {
      this.junkBytes += h.length;
      return;
    }
    const rel = h.offset - start;
    if (rel !== a.received || rel + h.length > a.length) {
      this.strike(h.requestId, h.chunk, a, toWire(new SwarmError(ERROR_CODES.BAD_PACKET, `packet at offset ${h.offset} does not continue chunk ${h.chunk}`)));
      return;
    }
    a.buf ??= this.buffers.acquire(r.chunkBytes);
    const c = this.cur;
    c.reqId = h.requestId;
    c.chunk = h.chunk;
    c.a = a;
    c.rel = rel;
    c.headerSum = headerSum;
    c.sum = 0;
  }

  private onPacketData(_h: PacketHeader, piece: Buffer, at: number): void {
    const c = this.cur;
    if (!c.a?.buf) return;
    const t0 = performance.now();
    c.a.buf.set(piece, c.rel + at);
    const t1 = performance.now();
    // sum the piece where it lies (hot, in the read arena); an odd start swaps its bytes
    const partial = this.readArena?.owns(piece) ? this.readArena.sum16(piece) : sum16(piece);
    c.sum = add16(c.sum, pieceSum(partial, at));
    this.times.checksumMs += performance.now() - t1;
    this.times.copyMs += t1 - t0;
  }

  private onPacketEnd(h: PacketHeader): void {
    const c = this.cur;
    const a = c.a;
    c.a = null;
    if (!a?.buf) return;
    if (!packetChecksumOk(h, c.headerSum, c.sum)) {
      this.strike(c.reqId, c.chunk, a, toWire(new SwarmError(ERROR_CODES.BAD_CHECKSUM, `bad packet checksum in chunk ${c.chunk}`)));
      return;
    }
    a.received += h.length;
    if (a.received === a.length) {
      const buf = a.buf!;
      a.buf = null;
      this.requests.get(c.reqId)?.chunks.delete(c.chunk);
      this.post({ type: 'chunk', peerId: this.peerId, reqId: c.reqId, chunk: c.chunk, bytes: buf, length: a.length }, [buf.buffer as ArrayBuffer]);
    }
  }

  private misbehaved(message: string): void {
    this.post({ type: 'misbehaved', peerId: this.peerId, error: { code: ERROR_CODES.BAD_MESSAGE, message } });
  }

  private onMessage(m: PeerReply): void {
    switch (m.t) {
      case 'bitfield': {
        if (m.cid !== this.cid) return;
        const bits = Buffer.from(m.have, 'base64');
        if (bits.length !== Math.ceil(this.chunks / 8)) return this.misbehaved(`sent a bitfield of ${bits.length} bytes for ${this.chunks} chunks`);
        this.post({ type: 'bitfield', peerId: this.peerId, bits: new Uint8Array(bits), complete: m.complete === true });
        return;
      }
      case 'have': {
        if (m.cid !== this.cid) return;
        if (m.chunks.length > MAX_HAVE_CHUNKS || !m.chunks.every((c) => Number.isInteger(c) && (c as number) >= 0 && (c as number) < this.chunks)) {
          return this.misbehaved('sent a have with chunks out of range');
        }
        this.post({ type: 'have', peerId: this.peerId, chunks: m.chunks as number[] });
        return;
      }
      case 'peers': {
        if (m.cid !== this.cid) return;
        const { ok } = checkAddresses(m.peers, MAX_PEX_PEERS);
        if (ok.length) this.post({ type: 'peers', peerId: this.peerId, peers: ok });
        return;
      }
      case 'busy':
        if (this.requests.has(m.id)) this.post({ type: 'busy', peerId: this.peerId, reqId: m.id });
        return;
    }
    if (m.t !== 'done' && m.t !== 'error') return;
    const id = m.id;
    if (id === undefined) return;
    const r = this.requests.get(id);
    if (!r) return;
    this.requests.delete(id);
    // zero-length chunks (0-byte files have none; this is for completeness) and leftovers
    this.dropAssemblies(r);
    if (m.t === 'done') this.post({ type: 'done', peerId: this.peerId, reqId: id });
    else {
      // the peer's words: a code we know (anything else is a bad message), a bounded message
      const code = isErrorCode(m.code) ? m.code : ERROR_CODES.BAD_MESSAGE;
      this.post({ type: 'done', peerId: this.peerId, reqId: id, error: { code, message: m.message.slice(0, 500) } });
    }
  }

  private dropAssemblies(r: Request): void {
    for (const a of r.chunks.values()) {
      // The buffer goes back to the pool, where another chunk may take it at once: nothing may
      // write into it any more. A packet half received when its request is cancelled (cancel
      // comes between two socket reads) still points at this assembly: its remaining pieces
      // must be skipped, not copied into a buffer that now belongs to someone else.
      if (a.buf) this.buffers.release(a.buf);
      a.buf = null;
      a.bad = true;
      if (this.cur.a === a) this.cur.a = null;
    }
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
