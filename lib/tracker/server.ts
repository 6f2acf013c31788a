/**
 * The tracker's TCP server: framed messages (our peers) and seed 002's raw JSON (stock
 * synchronizers) on one port, told apart by the first byte ('{' means raw JSON; a frame starts
 * with 0). Each connection is one peer; it leaves the directory when it closes, unregisters, or
 * is silent for KEEPALIVE_MISSES keepalive periods. Bad input closes that connection only.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { listenOn } from '../net/listen.js';
import { DEFAULT_TRACKER_PORT, KEEPALIVE_MISSES, KEEPALIVE_MS } from '../constants.js';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { FrameDecoder, encodeFrame, type Header } from '../protocol/frame.js';
import { checkMessage } from '../protocol/messages.js';
import { JsonObjectSplitter } from '../protocol/json-stream.js';
import { noLog, type Log } from '../log.js';
import { Registry, parseAnnounced, type AnnouncedFile } from './registry.js';

export interface TrackerOptions {
  port?: number;
  host?: string;
  keepaliveMs?: number;
  log?: Log;
  /** Clock, for tests. */
  now?: () => number;
  maxPeers?: number;
  maxFilesPerPeer?: number;
}

function plainIp(addr: string | undefined): string {
  if (!addr) return '0.0.0.0';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

/** 'change' fires after every change to the directory: what happened and to which peer. */
export interface TrackerEvents {
  change: [what: string, peer: string];
}

export class TrackerServer extends EventEmitter<TrackerEvents> {
  readonly registry: Registry;
  private readonly server: net.Server;
  private readonly sockets = new Map<string, net.Socket>();
  private readonly log: Log;
  private readonly now: () => number;
  private readonly keepaliveMs: number;
  private sweep: NodeJS.Timeout | null = null;
  host = '';
  port = 0;

  constructor(private readonly opts: TrackerOptions = {}) {
    super();
    this.log = opts.log ?? noLog;
    this.now = opts.now ?? Date.now;
    this.keepaliveMs = opts.keepaliveMs ?? KEEPALIVE_MS;
    this.registry = new Registry({ maxPeers: opts.maxPeers ?? 10_000, maxFilesPerPeer: opts.maxFilesPerPeer ?? 100_000 });
    this.server = net.createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<{ host: string; port: number }> {
    const a = await listenOn(this.server, this.opts.port ?? DEFAULT_TRACKER_PORT, this.opts.host ?? '127.0.0.1', 'the tracker');
    this.host = a.address;
    this.port = a.port;
    this.sweep = setInterval(() => this.expire(), Math.max(50, Math.floor(this.keepaliveMs / 2)));
    this.sweep.unref();
    this.log('tracker-listening', { host: this.host, port: this.port });
    return { host: this.host, port: this.port };
  }

  /** Drop peers silent for KEEPALIVE_MISSES periods (also run by a timer). */
  expire(): void {
    for (const key of this.registry.expire(this.now(), this.keepaliveMs * KEEPALIVE_MISSES)) {
      this.log('peer-expired', { peer: key });
      this.emit('change', 'expired', key);
      this.sockets.get(key)?.destroy();
    }
  }

  private accept(socket: net.Socket): void {
    const key = `${plainIp(socket.remoteAddress)}:${socket.remotePort}`;
    const ip = plainIp(socket.remoteAddress);
    this.sockets.set(key, socket);
    socket.setNoDelay(true);
    // registered peers speak every keepalive period; anything quieter for 3 periods is gone
    socket.setTimeout(this.keepaliveMs * KEEPALIVE_MISSES, () => socket.destroy());
    let mode: 'framed' | 'legacy' | null = null;
    const fail = (err: unknown) => {
      const e = asSwarmError(err);
      this.log('connection-closed', { peer: key, code: e.code, reason: e.message });
      if (mode === 'framed' && !socket.destroyed) for (const b of encodeFrame({ t: 'error', code: e.code, message: e.message })) socket.write(b);
      socket.end();
      socket.destroy();
    };
    const send = (h: Header) => {
      for (const b of encodeFrame(h)) socket.write(b);
    };
    const framed = new FrameDecoder(
      {
        onMessage: (h) => this.onFramed(key, ip, h, send),
        onPacket: () => {
          throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'data packets are not for the tracker');
        },
      },
      { maxBodyBytes: 0 },
    );
    const legacy = new JsonObjectSplitter((o) => this.onLegacy(key, ip, o, (v) => socket.write(JSON.stringify(v))));
    socket.on('data', (d: Buffer) => {
      try {
        if (!mode) {
          const first = d.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
          if (first === undefined) return;
          mode = first === 0x7b ? 'legacy' : 'framed';
        }
        if (mode === 'framed') framed.push(d);
        else legacy.push(d);
      } catch (err) {
        fail(err);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.sockets.delete(key);
      if (this.registry.unregister(key)) {
        this.log('peer-left', { peer: key });
        this.emit('change', 'left', key);
      }
    });
  }

  private onFramed(key: string, ip: string, h: Header, send: (h: Header) => void): void {
    checkMessage('trackerRequest', h);
    const id = h.id as number | undefined;
    const now = this.now();
    const files = (list: unknown[]): AnnouncedFile[] => list.map((f) => parseAnnounced(f, false));
    switch (h.t) {
      case 'register':
        this.registry.register(key, { ip, port: h.port as number }, files(h.files as unknown[]), now);
        this.log('peer-registered', { peer: key, port: h.port as number, files: (h.files as unknown[]).length });
        this.emit('change', 'registered', key);
        send({ t: 'directory', id, files: Object.fromEntries(this.registry.directory()) });
        return;
      case 'keepalive':
        this.registry.keepalive(key, now, h.port as number | undefined);
        send({ t: 'ok', id });
        return;
      case 'update':
        this.registry.update(key, files(h.files as unknown[]), now);
        this.log('peer-updated', { peer: key, files: (h.files as unknown[]).length });
        this.emit('change', 'updated', key);
        send({ t: 'ok', id });
        return;
      case 'delete': {
        const names = (h.names as unknown[]).filter((n): n is string => typeof n === 'string');
        this.registry.delete(key, names, now);
        this.log('peer-deleted', { peer: key, files: names.length });
        this.emit('change', 'deleted', key);
        send({ t: 'ok', id });
        return;
      }
      case 'unregister':
        this.registry.unregister(key);
        this.log('peer-unregistered', { peer: key });
        this.emit('change', 'unregistered', key);
        send({ t: 'ok', id });
        return;
      case 'dir':
        send({ t: 'directory', id, files: Object.fromEntries(this.registry.directory()) });
        return;
      case 'who-has':
        send({ t: 'holders', id, name: h.name as string, entry: this.registry.whoHas(h.name as string) });
        return;
    }
  }

  /** seed 002, Table 1: Initial Message and Keep-alive, both answered with the directory. */
  private onLegacy(key: string, ip: string, o: Record<string, unknown>, reply: (v: unknown) => void): void {
    const port = o.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'seed-002 message without a valid "port"');
    }
    const now = this.now();
    if (Array.isArray(o.files)) {
      this.registry.register(key, { ip, port }, o.files.map((f) => parseAnnounced(f, true)), now);
      this.log('legacy-peer-registered', { peer: key, port, files: o.files.length });
      this.emit('change', 'registered', key);
    } else if (this.registry.has(key)) {
      this.registry.keepalive(key, now, port);
    } else {
      throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'seed-002 keepalive before the initial message');
    }
    reply(this.registry.legacyDirectory());
  }

  async close(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets.values()) s.destroy();
    await closed;
  }
}

/** Start a tracker (the library API behind `swarm tracker`). */
export async function tracker(options: TrackerOptions = {}): Promise<TrackerServer> {
  const t = new TrackerServer(options);
  await t.listen();
  return t;
}
