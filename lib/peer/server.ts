/**
 * The TCP server of a serving peer: admits connections under the limits of net/guard.ts (in total,
 * per remote address, deadlines per state, eviction of idle or stuck connections when full) and
 * gives each a PeerSession over a SourceIndex it is handed (it never imports the share).
 * `close({graceful})` stops accepting, lets running transfers finish (seed 001's QUIT waits for
 * threads), then ends the rest; `close({graceful: false})` ends everything now.
 */
import net from 'node:net';
import { listenOn } from '../net/listen.js';
import { noLog, type Log } from '../log.js';
import { PeerSession } from './session.js';
import { TokenBucket } from '../scheduling/token-bucket.js';
import { ConnectionGuard, SERVE_LIMITS, type ServerLimits } from '../net/guard.js';
import { encodeFrame } from '../protocol/frame.js';
import { ERROR_CODES } from '../errors.js';
import { localHello, newPeerId } from '../net/identity.js';
import { UploadSlots } from '../scheduling/upload-slots.js';
import { RequesterChunks } from '../scheduling/requester-chunks.js';
import { Spreads } from './spreads.js';
import type { SourceIndex } from './source.js';
import type { OverlayPort } from './overlay-port.js';
import type { SyncPort } from './sync-port.js';

export interface PeerServerOptions {
  log?: Log;
  /** Connection limits and deadlines (defaults: SERVE_LIMITS). */
  limits?: Partial<ServerLimits>;
  /** Upload limit for the whole server, bytes per second (0 or absent: none). */
  maxUploadBytesPerSec?: number;
  /** The peer id this server says in hello (a node's downloads use the same, to recognise it). */
  peerId?: string;
  /**
   * Chunks in transit at once while several peers want data (scheduling/upload-slots.ts); 0 turns
   * the policy off (every chunk at once). Default UPLOAD_SLOTS.
   */
  uploadSlots?: number;
  /** Show a seeded content to several downloaders a few chunks at a time (default true). */
  spread?: boolean;
  /** Where search / discover requests go (discovery/overlay.ts); absent: they are ignored. */
  overlay?: OverlayPort;
}

/** Default chunks in transit under contention (see PeerServerOptions.uploadSlots). */
export const UPLOAD_SLOTS = 4;
/** How often the upload policy frees timed-out slots and lets first chunks that waited go. */
const SLOT_TICK_MS = 100;

/** How long a refused socket may take to read why it was refused. */
const REFUSED_LINGER_MS = 1_000;

export function plainIp(addr: string | undefined): string {
  if (!addr) return '0.0.0.0';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

export class PeerServer {
  private readonly server: net.Server;
  private readonly log: Log;
  readonly guard: ConnectionGuard<PeerSession>;
  private readonly upload: TokenBucket | null;
  private readonly overlay: OverlayPort | null;
  /** The sync index sessions answer from (set by a syncing node once it has one). */
  sync: SyncPort | null = null;
  private listenPort = 0;
  /** Sockets refused by the guard, told why and about to close. */
  private readonly refused = new Set<net.Socket>();

  readonly peerId: string;
  /** The upload policy: which waiting chunk goes next when several peers want data. */
  readonly slots: UploadSlots | null;
  /** How this server shows a content it seeds to several downloaders at once. */
  readonly spreads: Spreads | null;
  /** What the peers fetching from us have: the upload policy's rarity. */
  readonly requesters = new RequesterChunks();
  private nextSession = 1;
  private slotTimer: NodeJS.Timeout | null = null;
  /** Bytes sent by connections that have ended. */
  private sentByEnded = 0;

  constructor(private readonly sources: SourceIndex, opts: PeerServerOptions = {}) {
    this.peerId = opts.peerId ?? newPeerId();
    const slots = opts.uploadSlots ?? UPLOAD_SLOTS;
    this.slots = slots > 0 ? new UploadSlots(slots, undefined, (key) => this.requesters.holders(key.slice(0, key.lastIndexOf(':')), Number(key.slice(key.lastIndexOf(':') + 1)))) : null;
    this.spreads = opts.spread === false ? null : new Spreads();
    this.log = opts.log ?? noLog;
    this.overlay = opts.overlay ?? null;
    this.upload = opts.maxUploadBytesPerSec ? new TokenBucket(opts.maxUploadBytesPerSec, Date.now()) : null;
    this.guard = new ConnectionGuard<PeerSession>({ ...SERVE_LIMITS, ...opts.limits }, (s, reason) => this.log('peer-closed', { peer: s.remote, reason }));
    this.server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  private accept(socket: net.Socket): void {
    const ip = plainIp(socket.remoteAddress);
    socket.on('error', () => socket.destroy());
    const admitted = this.guard.admit(ip);
    if (!admitted.ok) {
      this.log('peer-refused', { peer: `${ip}:${socket.remotePort}`, reason: admitted.reason });
      // say why, then go: read (and drop) what it sends so its close is seen, and never let a
      // refused socket outlive REFUSED_LINGER_MS or the server (close() waits on every socket)
      this.refused.add(socket);
      socket.on('close', () => this.refused.delete(socket));
      socket.on('end', () => socket.destroy());
      socket.resume();
      for (const b of encodeFrame({ t: 'error', code: ERROR_CODES.BUSY, message: admitted.reason })) socket.write(b);
      socket.end();
      setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
      return;
    }
    const ctx = { sources: this.sources, log: this.log, upload: this.upload, hello: localHello(this.listenPort, ['bitfield', 'have', 'pex'], this.peerId), slots: this.slots, id: this.nextSession++, spreads: this.spreads, requesters: this.requesters, overlay: this.overlay, sync: this.sync };
    const s = new PeerSession(socket, ip, ctx, (ended, reason) => {
      this.guard.remove(ended);
      this.sentByEnded += ended.bytesSent;
      this.log('peer-disconnected', { peer: ended.remote, sent: ended.bytesSent, reason });
    });
    this.guard.add(s);
    this.log('peer-connected', { peer: s.remote });
  }

  async listen(port: number, host: string): Promise<{ host: string; port: number }> {
    const a = await listenOn(this.server, port, host, 'peers');
    this.listenPort = a.port;
    this.guard.start();
    if (this.slots) {
      const slots = this.slots;
      this.slotTimer = setInterval(() => slots.tick(Date.now()), SLOT_TICK_MS);
      this.slotTimer.unref();
    }
    return { host: a.address, port: a.port };
  }

  get connections(): number {
    return this.guard.size;
  }

  get busy(): number {
    let n = 0;
    for (const s of this.guard.connections()) if (s.busy) n++;
    return n;
  }

  /** Bytes this server has sent, and connections it is sending to now. */
  uploadStats(): { bytes: number; peers: number } {
    let bytes = this.sentByEnded;
    let peers = 0;
    for (const s of this.guard.connections()) {
      bytes += s.bytesSent;
      if (s.busy) peers++;
    }
    return { bytes, peers };
  }

  /** What connections hold right now (tests prove the bounds with these). */
  usage(): { connections: number; openReaders: number; bufferedRequestBytes: number; unsentReplyBytes: number } {
    let openReaders = 0;
    let bufferedRequestBytes = 0;
    let unsentReplyBytes = 0;
    for (const s of this.guard.connections()) {
      openReaders += s.openReaders;
      bufferedRequestBytes += s.bufferedRequestBytes;
      unsentReplyBytes += s.unsentReplyBytes;
    }
    return { connections: this.guard.size, openReaders, bufferedRequestBytes, unsentReplyBytes };
  }

  private forced = false;

  /** End every connection now (also ends the wait of a graceful close). */
  endAll(): void {
    this.forced = true;
    for (const s of [...this.guard.connections()]) s.destroy('server stopping');
    for (const socket of [...this.refused]) socket.destroy();
  }

  async close(opts: { graceful: boolean; waitMs?: number } = { graceful: true }): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (opts.graceful) {
      const deadline = Date.now() + (opts.waitMs ?? 10 * 60_000);
      while (this.busy > 0 && !this.forced && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    }
    this.guard.stop();
    if (this.slotTimer) clearInterval(this.slotTimer);
    this.endAll();
    await closed;
  }
}
