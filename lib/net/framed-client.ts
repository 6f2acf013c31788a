/**
 * A client connection speaking the framed protocol, to a peer (`swarm serve`) or a tracker.
 *
 *   connect ─► hello (ours, pipelined with the first request) ─► their hello must come first
 *   request(msg) ─► answer with the same id (typed by protocol/messages.ts), or its error
 *   write(msg)   ─► no answer expected (get, cancel); packets and unmatched messages go to the
 *                   handler the caller declares (the peer worker implements it)
 *
 * Every request has a timeout; `destroy(err)` is idempotent and fails whatever is pending. After
 * hello, message types this build does not know are skipped. A server that answers our hello with
 * an error is an older swarm: that is SWARM_ERR_VERSION with a message saying so.
 */
import net from 'node:net';
import { ERROR_CODES, SwarmError, fromWire, asSwarmError } from '../errors.js';
import { FrameDecoder, encodeFrame, type Header } from '../protocol/frame.js';
import { checkHello, decodeMessage, helloMessage, type Hello, type MessageFor, type HelloFields } from '../protocol/messages.js';
import type { PacketHeader } from '../protocol/packet.js';
import { localHello } from './identity.js';

export type ReplySide = 'peerReply' | 'trackerReply';
export type Reply<S extends ReplySide> = Exclude<MessageFor<S>, { t: 'hello' } | { t: 'error' }>;

export interface ClientHandler<S extends ReplySide = 'peerReply'> {
  /** Whole packets (tools and tests): header, raw header bytes, payload as slices of the input. */
  onPacket?(h: PacketHeader, headerBytes: Buffer, payload: Buffer[]): void;
  /** Streaming packets (see FrameDecoder): with these, the socket reads into one reused buffer. */
  onPacketStart?(h: PacketHeader, headerSum: number): void;
  onPacketData?(h: PacketHeader, piece: Buffer, at: number): void;
  onPacketEnd?(h: PacketHeader): void;
  /** Messages that answer no pending request (done, errors of a get, bitfield, have...). */
  onMessage?(m: MessageFor<S>, body: Buffer): void;
  /** The other side's hello arrived and passed. */
  onHello?(h: Hello): void;
  onClose?(err: SwarmError | null): void;
}

/** Size of the reused read buffer of streaming connections. */
export const READ_BUFFER_BYTES = 256 << 10;

/**
 * Read coalescing on streaming connections: after a read of fewer than COALESCE_BYTES the socket
 * stops reading for COALESCE_MS, and one shared timer (per thread) starts every such socket again.
 * A link slower than the machine otherwise wakes us once per arriving segment (a flash crowd over
 * 100 Mbit/s links: ~6.5 KiB per read, 14,000 reads per 64 MiB, 3,900 with this); meanwhile the kernel keeps
 * receiving into the socket buffer, so the sender does not slow down. Full reads (a fast link)
 * never wait.
 */
export const COALESCE_BYTES = 16 << 10;
export const COALESCE_MS = 2;

/** Sockets stopped for coalescing, per delay; one timer per delay starts a batch again. */
const stopped = new Map<number, Set<net.Socket>>();

function restartLater(socket: net.Socket, ms: number): void {
  let batch = stopped.get(ms);
  if (!batch) {
    const sockets = (batch = new Set<net.Socket>());
    stopped.set(ms, sockets);
    setTimeout(() => {
      stopped.delete(ms);
      for (const s of sockets) if (!s.destroyed) s.resume();
    }, ms);
  }
  batch.add(socket);
}

interface Pending {
  resolve: (v: { message: unknown; body: Buffer }) => void;
  reject: (e: SwarmError) => void;
  timer: NodeJS.Timeout;
}

export function parseHostPort(s: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new SwarmError(ERROR_CODES.USAGE, `not a host:port: ${s}`);
  const port = m[2] !== undefined ? Number(m[2]) : defaultPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SwarmError(ERROR_CODES.USAGE, `bad port in ${s} (1-65535)`);
  return { host: m[1]!, port };
}

export interface FramedClientOptions<S extends ReplySide> {
  side: S;
  handler?: ClientHandler<S>;
  /** Connect timeout, and the default timeout of a request. */
  timeoutMs?: number;
  /** Streaming mode: the buffer every socket read lands in (default: a fresh one). */
  readBuffer?: Buffer;
  /** Our hello (default: this process, not listening). */
  hello?: HelloFields;
  /** Bind the connection to this local address (tests: attackers on 127.0.0.2). */
  localAddress?: string;
  /** Streaming mode: how long a small read stops the socket (default COALESCE_MS; 0: never). */
  coalesceMs?: number;
}

export class FramedClient<S extends ReplySide = 'peerReply'> {
  private socket: net.Socket | null = null;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** Writes are held until the end of this turn of the event loop (see send). */
  private corked = false;
  private readonly streaming: boolean;
  private readonly handler: ClientHandler<S>;
  private readonly timeoutMs: number;
  readonly address: string;
  /** The other side's hello, once it arrived. */
  remoteHello: Hello | null = null;
  /** Waiting for the other side's hello (helloWithin): told true when it comes, false when the connection ends. */
  private helloWaiters: ((came: boolean) => void)[] = [];
  /** Socket reads taken (streaming connections; read coalescing keeps this low on slow links). */
  reads = 0;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly o: FramedClientOptions<S>,
  ) {
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.handler = o.handler ?? {};
    this.timeoutMs = o.timeoutMs ?? 10_000;
    const handler = this.handler;
    this.streaming = typeof handler.onPacketStart === 'function';
    this.decoder = new FrameDecoder(
      this.streaming
        ? {
            onMessage: (h, body) => this.onMessage(h, body),
            onPacketStart: handler.onPacketStart!.bind(handler),
            onPacketData: handler.onPacketData!.bind(handler),
            onPacketEnd: handler.onPacketEnd!.bind(handler),
          }
        : {
            onMessage: (h, body) => this.onMessage(h, body),
            onPacket: (h, raw, payload) => {
              if (!handler.onPacket) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'unexpected data packet');
              handler.onPacket(h, raw, payload);
            },
          },
      { reuseInput: this.streaming },
    );
  }

  private onBytes(d: Buffer): void {
    try {
      this.decoder.push(d);
    } catch (err) {
      this.destroy(asSwarmError(err));
    }
  }

  connect(): Promise<this> {
    return new Promise((resolve, reject) => {
      const coalesceMs = this.o.coalesceMs ?? COALESCE_MS;
      const base = { host: this.host, port: this.port, noDelay: true, ...(this.o.localAddress ? { localAddress: this.o.localAddress } : {}) };
      // Streaming handlers copy every byte out during the call, so one read buffer serves the
      // whole connection: no allocation per read, and reads of up to READ_BUFFER_BYTES.
      const socket = this.streaming
        ? net.connect({
            ...base,
            onread: {
              buffer: this.o.readBuffer ?? Buffer.allocUnsafe(READ_BUFFER_BYTES),
              callback: (n: number, buf: Uint8Array) => {
                this.reads++;
                this.onBytes(buf.subarray(0, n) as Buffer);
                if (n >= COALESCE_BYTES || coalesceMs <= 0 || this.closed) return true;
                restartLater(socket, coalesceMs);
                return false;
              },
            },
          })
        : net.connect(base);
      this.socket = socket;
      // queued before anything else this connection will carry, even writes made before 'connect'
      this.send(helloMessage(this.o.hello ?? localHello()));
      const timer = setTimeout(() => {
        const err = new SwarmError(ERROR_CODES.PEER_TIMEOUT, `no answer from ${this.address} within ${this.timeoutMs} ms`);
        reject(err);
        this.destroy(err);
      }, this.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(this);
      });
      if (!this.streaming) socket.on('data', (d: Buffer) => this.onBytes(d));
      socket.on('error', (err) => {
        clearTimeout(timer);
        const e = new SwarmError(ERROR_CODES.PEER_CLOSED, `connection to ${this.address} failed: ${err.message}`);
        reject(e);
        this.destroy(e);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        const e = new SwarmError(ERROR_CODES.PEER_CLOSED, `${this.address} closed the connection`);
        reject(e);
        this.destroy(e);
      });
    });
  }

  /** Send a request and wait for the answer with the same id. */
  request<T extends Reply<S>['t']>(h: Header, expect: T, timeoutMs = this.timeoutMs): Promise<{ message: Extract<Reply<S>, { t: T }>; body: Buffer }> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.closed || !this.socket) return reject(new SwarmError(ERROR_CODES.PEER_CLOSED, `not connected to ${this.address}`));
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SwarmError(ERROR_CODES.PEER_TIMEOUT, `${this.address} did not answer "${h.t}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          const m = v.message as { t: string };
          if (m.t !== expect) reject(new SwarmError(ERROR_CODES.BAD_MESSAGE, `${this.address} answered "${h.t}" with "${m.t}", expected "${expect}"`));
          else resolve(v as { message: Extract<Reply<S>, { t: T }>; body: Buffer });
        },
        reject,
        timer,
      });
      this.send({ ...h, id });
    });
  }

  /** Send without waiting (get, cancel). Returns false when the socket wants a drain. */
  write(h: Header): boolean {
    return this.send(h);
  }

  private send(h: Header): boolean {
    if (this.closed || !this.socket) return false;
    const socket = this.socket;
    // Frames written in one turn of the event loop leave in one system call: a syncer's `have`
    // and next `get` per file, or a download's requests to one peer, are each a few dozen bytes.
    // Uncorked at the next tick, not in the loop's check phase: setImmediate cut a 10,000-file
    // sync's writes from 4,794 to 253 but not its time, and made a flash crowd of 16 downloaders
    // ~5% slower (requests waited for the rest of a busy loop turn; 3 alternating runs each).
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    let ok = true;
    for (const b of encodeFrame(h)) ok = socket.write(b);
    return ok;
  }

  newId(): number {
    return this.nextId++;
  }

  /** True once the other side's hello came (at once if it has), false when none came within `ms` or the connection ended. */
  helloWithin(ms: number): Promise<boolean> {
    if (this.remoteHello) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), ms);
      timer.unref();
      const done = (came: boolean) => {
        clearTimeout(timer);
        const i = this.helloWaiters.indexOf(done);
        if (i >= 0) this.helloWaiters.splice(i, 1);
        resolve(came);
      };
      this.helloWaiters.push(done);
    });
  }

  private onMessage(h: Header, body: Buffer): void {
    const m = decodeMessage(this.o.side, h) as MessageFor<S> | { t: 'unknown'; type: string };
    if (!this.remoteHello) {
      if (m.t === 'hello') {
        checkHello(m as Hello, this.address);
        this.remoteHello = m as Hello;
        for (const w of this.helloWaiters.splice(0)) w(true);
        this.handler.onHello?.(this.remoteHello);
        return;
      }
      if (m.t === 'error') {
        // an older swarm refuses the hello it does not know; a current one only errs on bad input
        const e = m as { code: string; message: string };
        throw e.code === ERROR_CODES.UNKNOWN_MESSAGE || /hello/.test(e.message)
          ? new SwarmError(ERROR_CODES.VERSION, `${this.address} speaks an older swarm protocol (it answered hello with: ${e.message}); run the same swarm version on both sides`)
          : fromWire(e);
      }
      throw new SwarmError(ERROR_CODES.VERSION, `${this.address} did not start with hello (sent "${h.t}"); it is not a swarm ${this.o.side === 'trackerReply' ? 'tracker' : 'peer'} of this version`);
    }
    if (m.t === 'unknown' || m.t === 'hello') return; // a newer peer's message, or a repeated hello
    const id = (m as { id?: number }).id;
    const p = id !== undefined ? this.pending.get(id) : undefined;
    if (p) {
      this.pending.delete(id!);
      clearTimeout(p.timer);
      if (m.t === 'error') p.reject(fromWire(m as { code: string; message: string }));
      else p.resolve({ message: m, body });
      return;
    }
    if (m.t === 'error' && id === undefined) {
      this.destroy(fromWire(m as { code: string; message: string }));
      return;
    }
    this.handler.onMessage?.(m as MessageFor<S>, body);
  }

  /** Bytes written and not yet taken by the kernel (a peer that does not read makes this grow). */
  get pendingBytes(): number {
    return this.socket?.writableLength ?? 0;
  }

  get connected(): boolean {
    return !this.closed && !!this.socket;
  }

  destroy(err: SwarmError | null = null): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.destroy();
    const e = err ?? new SwarmError(ERROR_CODES.PEER_CLOSED, `connection to ${this.address} closed`);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    for (const w of this.helloWaiters.splice(0)) w(false);
    this.handler.onClose?.(err);
  }
}
