/**
 * One incoming peer connection: hello, then list / stat / manifest / get / cancel / interest /
 * have, search / discover (handed to the overlay: overlay-port.ts), or seed 002's plain-name File
 * Request (legacy.ts).
 *
 *   socket ─► FrameDecoder ─► hello (first, within the handshake deadline)
 *                          ├► list, stat, manifest: answered at once
 *                          ├► interest: bitfield, known holders (peer exchange), then every
 *                          │  chunk we newly verify as `have` (partial holders grow)
 *                          ├► have: the client got those chunks (frees our upload slots; one
 *                          │  for a chunk we sent it acknowledges it: take-account.ts)
 *                          └► get: queued ─► RangeSender (sender.ts): packets ─► socket
 *
 * Everything the remote side can make us hold is bounded: replies (when the socket holds more
 * than REPLY_WINDOW_BYTES unsent, the decoder and the socket pause, so a client that does not
 * read stops being read), queued requests (MAX_QUEUED_GETS), refused requests (MAX_REFUSED_GETS
 * in REFUSALS_WINDOW_MS, then the connection is closed), read buffers (READ_BUFFERS of 1 MiB, two
 * in use at a time; a client that never reads pins two 256 KiB pieces), open files
 * (MAX_OPEN_READERS, closed on every path), and the time it may spend in each state
 * (net/guard.ts; a peer that takes chunks and acknowledges none for sendStallMs is closed too).
 * Content is served by content id from a SourceIndex, only chunks the source has verified, and
 * bytes of a file that changed since it was hashed are never sent.
 */
import type { Socket } from 'node:net';
import { ERROR_CODES, SwarmError, toWire, asSwarmError } from '../errors.js';
import { FrameDecoder, encodeFrame, type Header } from '../protocol/frame.js';
import { checkHello, decodeMessage, helloMessage, type Hello, type PeerRequest } from '../protocol/messages.js';
import { chunksOf } from '../manifest.js';
import type { Log } from '../log.js';
import { serveLegacyRequest } from './legacy.js';
import type { TokenBucket } from '../scheduling/token-bucket.js';
import { UploadSlots } from '../scheduling/upload-slots.js';
import { MAX_REFUSED_GETS, REFUSALS_WINDOW_MS, TakeAccount } from './take-account.js';
import { SlotWaits } from './slot-waits.js';
import type { GuardedConnection, ServerLimits } from '../net/guard.js';
import type { HelloFields } from '../protocol/messages.js';
import type { PeerAddress } from '../types.js';
import type { ChunkSource, SourceIndex, SourceReader } from './source.js';
import { RangeSender, type RangeRequest } from './sender.js';
import type { Spreads } from './spreads.js';
import type { RequesterChunks } from '../scheduling/requester-chunks.js';
import type { OverlayFrom, OverlayPort } from './overlay-port.js';
import type { SyncConnection, SyncPort } from './sync-port.js';
import { Interests } from './interests.js';
import { listPage } from './list-page.js';

export const MAX_QUEUED_GETS = 1024;
export { MAX_REFUSED_GETS, REFUSALS_WINDOW_MS };
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
/**
 * When the server is full, a connection with a chunk unacknowledged for this long may be evicted.
 * A reader at ≥ 1 MiB/s acknowledges a 1 MiB chunk sooner; one that never does holds an upload
 * slot, not only a connection.
 */
const UNACKED_EVICT_MS = 2_000;

type GetRequest = RangeRequest;

export interface SessionContext {
  sources: SourceIndex;
  log: Log;
  upload: TokenBucket | null;
  hello: HelloFields;
  /** The server's upload policy (null: every chunk goes at once). */
  slots: UploadSlots | null;
  /** This connection's number for the upload policy. */
  id: number;
  /** How a seeder shows its content to several downloaders (null: everything at once). */
  spreads: Spreads | null;
  /** What the peers fetching from this server have (the upload policy's rarity); absent: not counted. */
  requesters?: RequesterChunks;
  /** Where search and discover requests go (null: this peer is not in an overlay). */
  overlay: OverlayPort | null;
  /** The sync index this peer answers from (null: it does not sync a folder). */
  sync: SyncPort | null;
}


export class PeerSession implements GuardedConnection {
  private readonly decoder: FrameDecoder;
  private readonly queue: GetRequest[] = [];
  private current: GetRequest | null = null;
  private sending = false;
  private closed = false;
  private readonly sender: RangeSender;
  /** Contents this peer asked to hear `have`s and holders of (interests.ts). */
  private readonly interests: Interests;
  private mode: 'unknown' | 'framed' | 'legacy' = 'unknown';
  /** The sync side of this connection (its proof of the folder key, its watch), once it sent a sync message. */
  private syncConn: SyncConnection | null = null;
  private readonly readers = new Map<string, Promise<SourceReader>>();
  readonly remote: string;
  readonly ip: string;
  readonly since: number;
  remoteHello: Hello | null = null;
  /** Clocks read by the guard (net/guard.ts). */
  private lastActivityAt: number;
  private partialSince = 0;
  private blockedSince = 0;
  /** What it takes: acknowledgements, the "took nothing" clock, refusals (take-account.ts). */
  private readonly account = new TakeAccount();
  /** Its side of the upload policy: waits for slots, cancels (slot-waits.ts). */
  private readonly waits: SlotWaits;
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
    this.waits = new SlotWaits(ctx.slots, ctx.id, this.account, { busy: (id) => this.send({ t: 'busy', id }), closed: () => this.closed });
    this.decoder = new FrameDecoder(
      {
        onMessage: (h) => this.onMessage(h),
        onPacket: () => {
          throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'peers do not send data packets to a server');
        },
      },
      { maxHeaderBytes: MAX_REQUEST_HEADER_BYTES, maxBodyBytes: 0 },
    );
    this.sender = new RangeSender(socket, ctx.upload, {
      closed: () => this.closed,
      blocked: (at) => {
        this.blockedSince ||= at;
      },
      active: () => {
        this.lastActivityAt = Date.now();
      },
      slot: (id, cid, chunk) => this.waits.wait(id, cid, chunk),
      sent: (cid, chunk) => {
        this.account.sent(UploadSlots.key(cid, chunk), Date.now());
        this.ctx.spreads?.sent(this.ctx.id, cid, chunk);
      },
      abandoned: (cid, chunk) => this.ctx.slots?.acked(this.ctx.id, UploadSlots.key(cid, chunk), Date.now()),
    });
    this.interests = new Interests(ctx.sources, (h) => this.send(h));
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => this.destroy('socket error'));
    socket.on('close', () => this.destroy('closed by peer'));
    // half-open sockets (server.ts): a plain-name client may shut its sending side once the name
    // is out and still read the file (legacy.ts answers it); a framed peer's end is our end too
    socket.on('end', () => {
      if (this.mode !== 'legacy') socket.end();
    });
  }

  /** True while a get is being sent or queued: a graceful shutdown waits for these. */
  get busy(): boolean {
    return this.sending || this.queue.length > 0;
  }

  get bytesSent(): number {
    return this.sender.bytesSent;
  }

  /** The address this peer serves on, if it said (hello's listen port), for peer exchange. */
  get listenAddress(): PeerAddress | null {
    const port = this.remoteHello?.listen;
    return port ? { ip: this.ip, port } : null;
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
    // kept by the session, not read from the upload slots: those forget a chunk after their ack
    // timeout (5 s), so a peer that never acknowledged was never closed for it (hostile review)
    const unacked = this.account.unackedSince();
    if (unacked && now - unacked > limits.sendStallMs) return `did not acknowledge a chunk sent to it for ${limits.sendStallMs} ms`;
    // asking and taking nothing for that long is what a client that never reads does: such
    // waiters (and slot holders that got their slot late) would otherwise hold sockets and files
    // for minutes (take-account.ts says what counts)
    if (this.busy && this.account.tookNothingFor(now, this.waits.waitingNow) > limits.sendStallMs) {
      return `asked for chunks and took none for ${limits.sendStallMs} ms`;
    }
    if (!this.busy && now - this.lastActivityAt > limits.idleMs) return `idle for ${limits.idleMs} ms`;
    return null;
  }

  evictRank(now: number): number {
    if (!this.remoteHello && this.mode !== 'legacy') return 4e12 + (now - this.since);
    if (this.blockedSince && now - this.blockedSince > STUCK_EVICT_MS) return 3e12 + (now - this.blockedSince);
    // a swarm peer says `have` for every chunk it gets; one that does not is stuck or hostile
    const unacked = this.account.unackedSince();
    if (unacked && now - unacked > UNACKED_EVICT_MS) return 3e12 + (now - unacked);
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
        serveLegacyRequest(
          this.socket,
          d,
          this.ctx.sources,
          this.ctx.log,
          (blocked) => {
            this.blockedSince = blocked ? Date.now() : 0;
          },
          this.ctx.upload, // --max-upload applies to plain-name requests too
        ).finally(() => {
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
    // a message decoded in the same read as the one that ended the session (a sync refusal ends
    // it from inside handle()) must not join it to anything again: leave() has run (hostile review)
    if (this.closed) return;
    this.lastActivityAt = Date.now();
    if (!this.remoteHello) {
      // checked on the raw header: an older swarm's first request need not decode in protocol 2
      if (h.t !== 'hello') {
        throw new SwarmError(ERROR_CODES.VERSION, `send hello first: this peer speaks swarm protocol 2 (an older swarm sent ${JSON.stringify(String(h.t).slice(0, 32))}); run the same swarm version on both sides`);
      }
      const m = decodeMessage('peerRequest', h);
      if (m.t !== 'hello') throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'hello expected');
      checkHello(m, `peer ${this.remote}`);
      this.remoteHello = m;
      this.send(helloMessage(this.ctx.hello));
      if (this.ctx.overlay?.joined && this.listenAddress && Array.isArray(m.caps) && m.caps.includes('overlay')) this.ctx.overlay.joined(this.overlayFrom());
      return;
    }
    this.handle(decodeMessage('peerRequest', h));
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
        const page = listPage(this.ctx.sources, m.after, m.limit);
        this.send({ t: 'files', id: m.id, ...page });
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
        if (!src) return;
        // one interest per content and connection (a client sends one), at most MAX_INTERESTS:
        // a repeat or one past the cap is ignored, so it joins nothing and costs no walk of the content
        if (!this.interests.accepts(m.cid)) return;
        const theirs = m.have !== undefined ? Buffer.from(m.have, 'base64') : undefined;
        // a seeder shows each of several downloaders a few chunks at a time (spreads.ts)
        const shown = this.ctx.spreads ? this.ctx.spreads.join(this.ctx.id, src, theirs, (cid, chunks) => this.send({ t: 'have', cid, chunks })) : src.bitfield();
        this.send({ t: 'bitfield', cid: m.cid, have: Buffer.from(shown).toString('base64'), complete: src.complete });
        this.ctx.requesters?.join(this.ctx.id, m.cid, chunksOf(src.manifest), theirs);
        this.interests.add(m.cid, this.listenAddress);
        return;
      }
      case 'have': {
        // the client has these chunks now: whatever we sent it of them is delivered, and a seeder
        // may show it more
        const chunks = m.chunks.slice(0, 65_536).filter((c): c is number => typeof c === 'number' && Number.isInteger(c) && c >= 0);
        const now = Date.now();
        let acked = false;
        for (const c of chunks) {
          const key = UploadSlots.key(m.cid, c);
          this.ctx.slots?.acked(this.ctx.id, key, now);
          if (this.account.ack(key, now)) acked = true;
        }
        if (acked) {
          // it takes what we send: from now on what it has counts in the upload policy's rarity
          // (a get followed at once by a cancel never gets here)
          const src = this.ctx.sources.byCid(m.cid);
          if (src) this.ctx.requesters?.asked(this.ctx.id, m.cid, chunksOf(src.manifest));
        }
        this.ctx.requesters?.had(this.ctx.id, m.cid, chunks);
        this.ctx.spreads?.had(this.ctx.id, m.cid, chunks);
        return;
      }
      case 'get': {
        if (!this.busy) this.account.asking(Date.now());
        const refuse = (code: string, message: string) => {
          this.send({ t: 'error', id: m.id, code, message });
          // only what an honest client never makes us do counts: a range it was not told we
          // have. A content that is gone (a file that changed under a sync's pipelined requests)
          // or a full queue is cheap to refuse and common in honest use.
          if ((code === ERROR_CODES.NOT_HAVE || code === ERROR_CODES.BAD_MESSAGE) && this.account.refused(Date.now())) {
            this.failProtocol(new SwarmError(ERROR_CODES.LIMIT, `more than ${MAX_REFUSED_GETS} requests refused within ${REFUSALS_WINDOW_MS / 1000} s: ask only for chunks this peer said it has`));
          }
        };
        if (this.queue.length >= MAX_QUEUED_GETS) return refuse(ERROR_CODES.LIMIT, `more than ${MAX_QUEUED_GETS} requests queued`);
        const src = this.ctx.sources.byCid(m.cid);
        if (!src) return refuse(ERROR_CODES.NOT_FOUND, `no content ${m.cid.slice(0, 16)}… here`);
        const chunks = chunksOf(src.manifest);
        if (m.from >= m.to || m.to > chunks) return refuse(ERROR_CODES.BAD_MESSAGE, `chunk range [${m.from}, ${m.to}) outside 0..${chunks}`);
        // a complete source has every chunk of the range; a partial one is checked at both ends
        // (a range running past what it has: one look), then up to its first hole (refusals are
        // limited per connection: take-account.ts)
        if (!src.complete) {
          const hole = !src.has(m.from) ? m.from : !src.has(m.to - 1) ? m.to - 1 : firstMissing(src, m.from + 1, m.to - 1);
          if (hole >= 0) return refuse(ERROR_CODES.NOT_HAVE, `chunk ${hole} is not verified here yet`);
        }
        this.queue.push({ id: m.id, source: src, from: m.from, to: m.to, cancelled: false });
        if (!this.sending) void this.sendLoop();
        return;
      }
      case 'search':
      case 'discover': {
        const overlay = this.ctx.overlay;
        if (!overlay) return; // not in an overlay: nothing to forward to, nothing to say
        overlay.request(m, this.overlayFrom());
        return;
      }
      case 'sync-index':
      case 'sync-watch':
      case 'sync-auth':
      case 'sync-proof': {
        // the folder key's proof is state of this connection: every sync message goes to one handler
        const sync = this.ctx.sync;
        if (!sync?.open) {
          if (m.t !== 'sync-watch') this.send({ t: 'error', id: m.id, code: ERROR_CODES.NOT_FOUND, message: 'this peer does not sync a folder' });
          return;
        }
        this.syncConn ??= sync.open({
          remote: this.remote,
          peer: this.remoteHello!.peer,
          listen: this.listenAddress,
          send: (h) => this.send(h),
          end: (reason) => {
            this.socket.end();
            this.destroy(reason);
          },
        });
        return this.syncConn.handle(m);
      }
      case 'cancel': {
        for (const r of this.queue) if (r.id === m.id) r.cancelled = true;
        const cur = this.current;
        if (cur && cur.id === m.id) cur.cancelled = true;
        this.waits.cancelled(m.id);
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
        this.waits.taken(req.id, req.source.manifest.cid, req.from, req.to);
        try {
          await this.sender.send(req, await this.reader(req.source));
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
      this.account.idle(this.lastActivityAt);
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

  /** This connection as the overlay sees it: who sent, and a way to answer on it. */
  private overlayFrom(): OverlayFrom {
    return {
      key: `s${this.ctx.id}`,
      ip: this.ip,
      peer: this.remoteHello!.peer,
      listen: this.listenAddress,
      reply: (h) => {
        if (this.closed) return false;
        this.send(h);
        return true;
      },
    };
  }

  /** End the connection (idempotent): cancels its requests, closes its files. */
  destroy(reason = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.queue) r.cancelled = true;
    this.queue.length = 0;
    if (this.current) this.current.cancelled = true;
    this.socket.destroy();
    this.sender.destroy();
    this.interests.close(this.listenAddress);
    this.syncConn?.close();
    this.ctx.slots?.drop(this.ctx.id, Date.now());
    this.ctx.spreads?.leave(this.ctx.id);
    this.ctx.requesters?.leave(this.ctx.id);
    for (const cid of [...this.readers.keys()]) this.forgetReader(cid);
    this.onEnd(this, reason);
  }
}

/** The first chunk of [from, to) that `src` has not verified, or -1 (a partial source skips 8 verified chunks a step). */
function firstMissing(src: ChunkSource, from: number, to: number): number {
  if (src.firstMissing) return src.firstMissing(from, to);
  for (let c = from; c < to; c++) if (!src.has(c)) return c;
  return -1;
}
