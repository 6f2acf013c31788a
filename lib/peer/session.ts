/**
 * One incoming peer connection: hello, then list / stat / manifest / get / cancel / interest /
 * have, search / discover (handed to the overlay: overlay-port.ts), or seed 002's plain-name File
 * Request (legacy.ts). The session owns the socket, the decoder, the reply window and the
 * handshake, and hands each request to the part that owns it:
 *
 *   socket ─► FrameDecoder ─► hello (first, within the handshake deadline)
 *                          ├► list, stat, manifest: answered at once (answers.ts)
 *                          ├► interest: bitfield, known holders (peer exchange), then every
 *                          │  chunk we newly verify as `have` (partial holders grow)
 *                          ├► have: the client got those chunks (frees our upload slots; one
 *                          │  for a chunk we sent it acknowledges it: take-account.ts)
 *                          │  (interest and have: have-exchange.ts)
 *                          └► get: checked, queued (get-queue.ts) ─► RangeSender (sender.ts):
 *                             packets ─► socket
 *
 * Everything the remote side can make us hold is bounded: replies (when the socket holds more
 * than REPLY_WINDOW_BYTES unsent, the decoder and the socket pause, so a client that does not
 * read stops being read), queued requests (MAX_QUEUED_GETS), refused requests (MAX_REFUSED_GETS
 * in REFUSALS_WINDOW_MS, then the connection is closed), read buffers (READ_BUFFERS of 1 MiB, two
 * in use at a time; a client that never reads pins two 256 KiB pieces), open files
 * (MAX_OPEN_READERS, closed on every path), and the time it may spend in each state
 * (net/guard.ts, by the rules of guard-rules.ts; a peer that takes chunks and acknowledges none
 * for sendStallMs is closed too). Content is served by content id from a SourceIndex, only chunks
 * the source has verified, and bytes of a file that changed since it was hashed are never sent.
 */
import type { Socket } from 'node:net';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { FrameDecoder, encodeFrame, type Header } from '../protocol/frame.js';
import { checkHello, decodeMessage, helloMessage, type Hello, type PeerRequest, type UnknownMessage } from '../protocol/messages.js';
import { serveLegacyRequest } from './legacy.js';
import { UploadSlots } from '../scheduling/upload-slots.js';
import { MAX_REFUSED_GETS, REFUSALS_WINDOW_MS, TakeAccount } from './take-account.js';
import { SlotWaits } from './slot-waits.js';
import type { GuardedConnection, ServerLimits } from '../net/guard.js';
import type { PeerAddress } from '../types.js';
import { RangeSender } from './sender.js';
import type { OverlayFrom } from './overlay-port.js';
import type { SyncConnection } from './sync-port.js';
import { answer } from './answers.js';
import { GetQueue, MAX_QUEUED_GETS, type GetRefusal } from './get-queue.js';
import { HaveExchange } from './have-exchange.js';
import { evictRank, overdueReason, type SessionClocks } from './guard-rules.js';
import type { SessionContext } from './session-context.js';

export { MAX_QUEUED_GETS, MAX_REFUSED_GETS, REFUSALS_WINDOW_MS };
export type { SessionContext };

/** Unsent reply bytes at which we stop reading the client's requests. */
export const REPLY_WINDOW_BYTES = 256 << 10;
/** Largest request frame: requests are small JSON headers with no body. */
export const MAX_REQUEST_HEADER_BYTES = 16 << 10;

export class PeerSession implements GuardedConnection {
  private readonly decoder: FrameDecoder;
  /** Its `get`s: queued, served in order (get-queue.ts). */
  private readonly gets: GetQueue;
  /** A plain-name File Request is being answered (legacy.ts). */
  private servingLegacy = false;
  private closed = false;
  private readonly sender: RangeSender;
  /** Its interest, bitfield and have messages (have-exchange.ts). */
  private readonly haves: HaveExchange;
  private mode: 'unknown' | 'framed' | 'legacy' = 'unknown';
  /** The sync side of this connection (its proof of the folder key, its watch), once it sent a sync message. */
  private syncConn: SyncConnection | null = null;
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
        this.blockedSince = at === 0 ? 0 : this.blockedSince || at;
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
    this.sender.gate.released = () => {
      // the frames the gate held are out (or queued below the window): a 'drain' may never come
      if (this.pausedForReplies && this.unsentReplyBytes <= REPLY_WINDOW_BYTES) this.resumeReading();
    };
    this.gets = new GetQueue(ctx.sources, {
      closed: () => this.closed,
      taken: (req) => this.waits.taken(req.id, req.source.manifest.cid, req.from, req.to),
      serve: (req, reader) => this.sender.send(req, reader),
      reply: (h) => this.send(h),
      refused: (cid, reason) => this.ctx.log('refused', { peer: this.remote, cid, reason }),
      idle: () => {
        this.lastActivityAt = Date.now();
        this.account.idle(this.lastActivityAt);
      },
    });
    this.haves = new HaveExchange(ctx, this.account, (h) => this.send(h));
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => this.destroy('socket error'));
    socket.on('close', () => this.destroy('closed by peer'));
    // half-open sockets (server.ts): a plain-name client may shut its sending side once the name
    // is out and still read the file (legacy.ts answers it); a framed peer's end is our end too
    socket.on('end', () => {
      // (after a piece the kernel is sending: ended now, the peer would get a cut packet)
      if (this.mode !== 'legacy') this.sender.gate.end();
    });
  }

  /** True while a get is being sent or queued: a graceful shutdown waits for these. */
  get busy(): boolean {
    return this.servingLegacy || this.gets.busy;
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
    return this.gets.openReaders;
  }

  get bufferedRequestBytes(): number {
    return this.decoder.buffered;
  }

  /** Reply and data bytes written but not yet taken by the kernel (the reply window, or a piece). */
  get unsentReplyBytes(): number {
    return this.socket.writableLength + this.sender.gate.heldBytes;
  }

  overdue(now: number, limits: ServerLimits): string | null {
    return overdueReason(this.clocks(now), now, limits);
  }

  evictRank(now: number): number {
    return evictRank(this.clocks(now), now);
  }

  /** What the guard judges this connection by (guard-rules.ts). */
  private clocks(now: number): SessionClocks {
    return {
      legacy: this.mode === 'legacy',
      hello: this.remoteHello !== null,
      busy: this.busy,
      since: this.since,
      lastActivityAt: this.lastActivityAt,
      partialSince: this.partialSince,
      blockedSince: this.blockedSince,
      unackedSince: this.account.unackedSince(),
      tookNothingFor: this.account.tookNothingFor(now, this.waits.waitingNow),
    };
  }

  private onData(d: Buffer): void {
    if (this.mode === 'unknown') {
      this.mode = d[0] === 0 ? 'framed' : 'legacy';
      if (this.mode === 'legacy') {
        this.socket.removeAllListeners('data');
        this.servingLegacy = true;
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
          this.servingLegacy = false;
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
    this.sender.gate.write(encodeFrame(h, body));
    this.checkWindow();
  }

  /** Replies are piling up unread: stop decoding and reading until the socket drains. */
  private checkWindow(): void {
    if (this.pausedForReplies || this.unsentReplyBytes <= REPLY_WINDOW_BYTES) return;
    this.pausedForReplies = true;
    this.blockedSince ||= Date.now();
    this.partialSince = 0;
    this.decoder.pause();
    this.socket.pause();
  }

  private onDrain(): void {
    this.blockedSince = 0;
    this.lastActivityAt = Date.now();
    this.resumeReading();
  }

  private resumeReading(): void {
    if (!this.pausedForReplies || this.closed) return;
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

  private handle(m: PeerRequest | UnknownMessage): void {
    switch (m.t) {
      case 'hello':
        return; // repeated: ignored
      case 'unknown':
      case 'list':
      case 'stat':
      case 'manifest': {
        const a = answer(m, this.ctx.sources);
        if (a) this.send(a.header, a.body);
        return;
      }
      case 'interest':
        return this.haves.interest(m, this.listenAddress);
      case 'have':
        return this.haves.have(m);
      case 'get': {
        if (!this.busy) this.account.asking(Date.now());
        const refusal = this.gets.add(m);
        if (refusal) this.refuseGet(m.id, refusal);
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
        this.gets.cancel(m.id);
        this.waits.cancelled(m.id);
        return;
      }
    }
  }

  private refuseGet(id: number, { code, message }: GetRefusal): void {
    this.send({ t: 'error', id, code, message });
    // only what an honest client never makes us do counts: a range it was not told we
    // have. A content that is gone (a file that changed under a sync's pipelined requests)
    // or a full queue is cheap to refuse and common in honest use.
    if ((code === ERROR_CODES.NOT_HAVE || code === ERROR_CODES.BAD_MESSAGE) && this.account.refused(Date.now())) {
      this.failProtocol(new SwarmError(ERROR_CODES.LIMIT, `more than ${MAX_REFUSED_GETS} requests refused within ${REFUSALS_WINDOW_MS / 1000} s: ask only for chunks this peer said it has`));
    }
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
    this.socket.destroy();
    this.sender.destroy();
    this.haves.close(this.listenAddress);
    this.syncConn?.close();
    this.ctx.slots?.drop(this.ctx.id, Date.now());
    this.waits.close();
    this.ctx.spreads?.leave(this.ctx.id);
    this.ctx.requesters?.leave(this.ctx.id);
    this.gets.close();
    this.onEnd(this, reason);
  }
}
