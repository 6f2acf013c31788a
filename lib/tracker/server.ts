/**
 * The tracker's TCP server: framed messages (our peers) and seed 002's raw JSON (stock
 * synchronizers) on one port, told apart by the first byte ('{' means raw JSON; a frame starts
 * with 0). Each connection is one registration; it leaves the directory when it closes,
 * unregisters, or is silent for KEEPALIVE_MISSES keepalive periods.
 *
 *   accept ─► ConnectionGuard (caps in total and per address, deadlines, eviction when full)
 *   framed ─► hello ─► typed requests ─► requests.ts ─► Registry (entries checked one by one;
 *             bad ones dropped and reported in `ok.dropped`, never the whole message)
 *   answers wait for the reader: past REPLY_WINDOW_BYTES unsent, the connection stops being read
 *   (and a seed-002 peer's keepalives are answered once, when it has read the last answer)
 *
 * Directory answers are paged (`dir` with `after`), so 100,000 files per peer fit in frames.
 *
 * Stock seed-002 peers expire later than ours (LEGACY_SILENCE_MS, 10 minutes, instead of 3
 * keepalive periods). The seed says keepalive every 5 s, but its synchronizer sends the next one
 * only after it has fetched every file the last directory answer made it want (the skeleton's
 * sync step: send, read the directory, fetch, then a 5 s timer): during its first sync, which
 * fetches the whole swarm, it is silent for as long as that takes. Dropping it then would take
 * its files out of the directory in the middle of its first sync. A stock peer that goes away
 * still leaves at once when its connection closes; only one whose host vanished without a word
 * lingers, and only for LEGACY_SILENCE_MS.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { listenOn } from '../net/listen.js';
import { DEFAULT_TRACKER_PORT, KEEPALIVE_MISSES, KEEPALIVE_MS } from '../constants.js';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { FrameDecoder, encodeFrame, type Header } from '../protocol/frame.js';
import { checkHello, decodeMessage, helloMessage, type Hello } from '../protocol/messages.js';
import { JsonObjectSplitter } from '../protocol/json-stream.js';
import { noLog, type Log } from '../log.js';
import { ConnectionGuard, type GuardedConnection, type ServerLimits } from '../net/guard.js';
import { localHello } from '../net/identity.js';
import { plainIp } from '../peer/server.js';
import { Registry, type RegistryLimits } from './registry.js';
import { answerFramed, applyLegacy, type RequestContext } from './requests.js';

export { DIR_PAGE_ENTRIES } from './requests.js';

export interface TrackerOptions {
  port?: number;
  host?: string;
  keepaliveMs?: number;
  log?: Log;
  /** Clock, for tests. */
  now?: () => number;
  /** Directory limits (registrations, files, entries; see registry.ts). */
  registry?: Partial<RegistryLimits>;
  /** Connection limits and deadlines (see net/guard.ts). */
  limits?: Partial<ServerLimits>;
  /** Silence after which a stock seed-002 registration expires (default LEGACY_SILENCE_MS). */
  legacySilenceMs?: number;
}

/** Largest request a tracker reads: a page of announced files (clients send ≤ 200 KiB pages). */
export const MAX_TRACKER_REQUEST_BYTES = 256 << 10;
/** Unsent answer bytes at which a connection stops being read. */
export const REPLY_WINDOW_BYTES = 1 << 20;
/** Silence after which a stock seed-002 registration expires (see the header). */
export const LEGACY_SILENCE_MS = 10 * 60_000;

export function trackerLimits(keepaliveMs: number): ServerLimits {
  return {
    maxConnections: 1024,
    maxPerIp: 64,
    handshakeMs: 5_000,
    frameMs: 10_000,
    // registered peers speak every keepalive period; anything quieter for 3 periods is gone
    idleMs: keepaliveMs * KEEPALIVE_MISSES,
    sendStallMs: 30_000,
  };
}

/** 'change' fires after every change to the directory: what happened and to which peer. */
export interface TrackerEvents {
  change: [what: string, peer: string];
}

class TrackerConnection implements GuardedConnection {
  mode: 'framed' | 'legacy' | null = null;
  hello: Hello | null = null;
  registered = false;
  lastActivityAt: number;
  partialSince = 0;
  blockedSince = 0;
  paused = false;
  /** seed 002: a directory answer is owed once the reader catches up. */
  owesLegacyAnswer = false;
  /** Bytes received and not yet consumed by a complete message (set once the decoders exist). */
  buffered: () => number = () => 0;
  readonly since: number;

  constructor(
    readonly key: string,
    readonly ip: string,
    readonly socket: net.Socket,
    now: number,
    private readonly legacySilenceMs: number,
  ) {
    this.since = this.lastActivityAt = now;
  }

  overdue(now: number, limits: ServerLimits): string | null {
    if (!this.registered && !this.hello && now - this.since > limits.handshakeMs) return `nothing useful within ${limits.handshakeMs} ms`;
    if (this.partialSince && now - this.partialSince > limits.frameMs) return `a message took longer than ${limits.frameMs} ms to arrive`;
    if (this.blockedSince && now - this.blockedSince > limits.sendStallMs) return `did not read answers for ${limits.sendStallMs} ms`;
    // a registered stock seed-002 peer is silent through its syncs (see the header)
    const idleMs = this.mode === 'legacy' && this.registered ? Math.max(limits.idleMs, this.legacySilenceMs) : limits.idleMs;
    if (now - this.lastActivityAt > idleMs) return `silent for ${idleMs} ms`;
    return null;
  }

  evictRank(now: number): number {
    if (!this.registered && !this.hello) return 4e12 + (now - this.since);
    if (this.blockedSince) return 3e12 + (now - this.blockedSince);
    if (this.partialSince && now - this.partialSince > 1_000) return 2e12 + (now - this.partialSince);
    if (!this.registered) return 1e12 + (now - this.lastActivityAt);
    return 0; // a registered peer keeping alive is the tracker's purpose
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export class TrackerServer extends EventEmitter<TrackerEvents> {
  readonly registry: Registry;
  readonly guard: ConnectionGuard<TrackerConnection>;
  private readonly server: net.Server;
  private readonly conns = new Map<string, TrackerConnection>();
  private readonly log: Log;
  private readonly now: () => number;
  private readonly keepaliveMs: number;
  /** What requests act on (requests.ts). */
  private readonly requests: RequestContext;
  private sweep: NodeJS.Timeout | null = null;
  host = '';
  port = 0;

  constructor(private readonly opts: TrackerOptions = {}) {
    super();
    this.log = opts.log ?? noLog;
    this.now = opts.now ?? Date.now;
    this.keepaliveMs = opts.keepaliveMs ?? KEEPALIVE_MS;
    this.registry = new Registry(opts.registry);
    this.requests = { registry: this.registry, log: this.log, changed: (what, peer) => this.emit('change', what, peer) };
    this.guard = new ConnectionGuard<TrackerConnection>({ ...trackerLimits(this.keepaliveMs), ...opts.limits }, (c, reason) =>
      this.log('connection-closed', { peer: c.key, reason }),
    );
    this.server = net.createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<{ host: string; port: number }> {
    const a = await listenOn(this.server, this.opts.port ?? DEFAULT_TRACKER_PORT, this.opts.host ?? '127.0.0.1', 'the tracker');
    this.host = a.address;
    this.port = a.port;
    this.sweep = setInterval(() => this.expire(), Math.max(50, Math.floor(this.keepaliveMs / 2)));
    this.sweep.unref();
    this.guard.start();
    this.log('tracker-listening', { host: this.host, port: this.port });
    return { host: this.host, port: this.port };
  }

  /** Drop peers silent for KEEPALIVE_MISSES periods (also run by a timer). */
  expire(): void {
    for (const key of this.registry.expire(this.now(), this.keepaliveMs * KEEPALIVE_MISSES)) {
      this.log('peer-expired', { peer: key });
      this.emit('change', 'expired', key);
      this.conns.get(key)?.socket.destroy();
    }
  }

  private accept(socket: net.Socket): void {
    const ip = plainIp(socket.remoteAddress);
    const key = `${ip}:${socket.remotePort}`;
    socket.on('error', () => socket.destroy());
    const admitted = this.guard.admit(ip);
    if (!admitted.ok) {
      this.log('connection-refused', { peer: key, reason: admitted.reason });
      socket.destroy();
      return;
    }
    const c = new TrackerConnection(key, ip, socket, this.now(), this.opts.legacySilenceMs ?? LEGACY_SILENCE_MS);
    this.guard.add(c);
    this.conns.set(key, c);
    socket.setNoDelay(true);
    const fail = (err: unknown) => {
      const e = asSwarmError(err);
      this.log('connection-closed', { peer: key, code: e.code, reason: e.message });
      if (c.mode === 'framed' && !socket.destroyed) for (const b of encodeFrame({ t: 'error', code: e.code, message: e.message })) socket.write(b);
      socket.end();
      socket.destroy();
    };
    const send = (h: Header) => {
      for (const b of encodeFrame(h)) socket.write(b);
      this.checkWindow(c, framed);
    };
    const framed = new FrameDecoder(
      {
        onMessage: (h) => this.onFramed(c, h, send),
        onPacket: () => {
          throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'data packets are not for the tracker');
        },
      },
      { maxHeaderBytes: MAX_TRACKER_REQUEST_BYTES, maxBodyBytes: 0 },
    );
    const legacy = new JsonObjectSplitter((o) => this.onLegacy(c, o), MAX_TRACKER_REQUEST_BYTES);
    c.buffered = () => (c.mode === 'legacy' ? legacy.buffered : framed.buffered);
    // the frame deadline runs only while a message is still arriving: while we are paused for
    // answers, what the decoder holds waits on us, not on the client
    const trackPartial = () => {
      const idle = c.mode === 'legacy' ? legacy.idle : framed.idle;
      if (c.paused || idle) c.partialSince = 0;
      else c.partialSince ||= this.now();
    };
    socket.on('data', (d: Buffer) => {
      try {
        if (!c.mode) {
          const first = d.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
          if (first === undefined) return;
          c.mode = first === 0x7b ? 'legacy' : 'framed';
        }
        if (c.mode === 'framed') framed.push(d);
        else legacy.push(d);
        trackPartial();
      } catch (err) {
        fail(err);
      }
    });
    socket.on('drain', () => {
      c.blockedSince = 0;
      c.lastActivityAt = this.now();
      // resume first: the answer owed below may fill the window again and pause us anew
      if (c.paused) {
        c.paused = false;
        socket.resume();
        try {
          framed.resume();
          trackPartial();
        } catch (err) {
          fail(err);
        }
      }
      if (c.owesLegacyAnswer) {
        c.owesLegacyAnswer = false;
        this.replyLegacy(c);
      }
    });
    socket.on('close', () => {
      this.guard.remove(c);
      if (this.conns.get(key) === c) this.conns.delete(key);
      if (this.registry.unregister(key)) {
        this.log('peer-left', { peer: key });
        this.emit('change', 'left', key);
      }
    });
  }

  /** What connections hold right now (tests prove the bounds with these). */
  usage(): { connections: number; bufferedRequestBytes: number; unsentReplyBytes: number } {
    let bufferedRequestBytes = 0;
    let unsentReplyBytes = 0;
    for (const c of this.guard.connections()) {
      bufferedRequestBytes += c.buffered();
      unsentReplyBytes += c.socket.writableLength;
    }
    return { connections: this.guard.size, bufferedRequestBytes, unsentReplyBytes };
  }

  private checkWindow(c: TrackerConnection, decoder: FrameDecoder | null): void {
    if (c.paused || c.socket.writableLength <= REPLY_WINDOW_BYTES) return;
    c.paused = true;
    c.blockedSince ||= this.now();
    c.partialSince = 0;
    decoder?.pause();
    c.socket.pause();
  }

  private onFramed(c: TrackerConnection, h: Header, send: (h: Header) => void): void {
    const m = decodeMessage('trackerRequest', h);
    c.lastActivityAt = this.now();
    if (!c.hello) {
      if (m.t !== 'hello') throw new SwarmError(ERROR_CODES.VERSION, `send hello first: this tracker speaks swarm protocol 2 (an older swarm sent "${h.t}"); run the same swarm version on both sides`);
      checkHello(m, `peer ${c.key}`);
      c.hello = m;
      send(helloMessage(localHello()));
      return;
    }
    answerFramed(this.requests, c, m, this.now(), send);
  }

  /** seed 002, Table 1: Initial Message and Keep-alive, both answered with the directory. */
  private onLegacy(c: TrackerConnection, o: Record<string, unknown>): void {
    const now = this.now();
    applyLegacy(this.requests, c, o, now, Math.max(this.keepaliveMs * KEEPALIVE_MISSES, this.opts.legacySilenceMs ?? LEGACY_SILENCE_MS));
    c.lastActivityAt = now;
    // a peer that does not read its answers gets one more when it has caught up, not one per
    // message; meanwhile it is not read either (so it cannot keep us parsing, and the send-stall
    // deadline applies to it as to any reader that stopped)
    if (c.socket.writableNeedDrain) {
      c.owesLegacyAnswer = true;
      if (!c.paused) {
        c.paused = true;
        c.blockedSince ||= now;
        c.partialSince = 0;
        c.socket.pause();
      }
    } else this.replyLegacy(c);
  }

  private replyLegacy(c: TrackerConnection): void {
    if (c.socket.destroyed) return;
    c.socket.write(JSON.stringify(this.registry.legacyDirectory()));
    this.checkWindow(c, null);
  }

  async close(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    this.guard.stop();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.conns.values()) c.socket.destroy();
    await closed;
  }
}

/** Start a tracker (the library API behind `swarm tracker`). */
export async function tracker(options: TrackerOptions = {}): Promise<TrackerServer> {
  const t = new TrackerServer(options);
  await t.listen();
  return t;
}
