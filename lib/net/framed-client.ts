/**
 * A client connection speaking the framed protocol, to a peer (`swarm serve`) or a tracker:
 * request/answer matched by id for control messages, and a raw path for `get` whose data packets
 * and unmatched messages go to the handler the caller declares (the peer worker implements it).
 * Every request has a timeout; `destroy(err)` is idempotent and fails whatever is pending.
 */
import net from 'node:net';
import { ERROR_CODES, SwarmError, fromWire, asSwarmError } from '../errors.js';
import { FrameDecoder, encodeFrame, type Header } from '../protocol/frame.js';
import { checkMessage, type ProtocolSide } from '../protocol/messages.js';
import type { PacketHeader } from '../protocol/packet.js';

export interface PeerClientHandler {
  onPacket?(h: PacketHeader, headerBytes: Buffer, payload: Buffer[]): void;
  /** Streaming packets (see FrameDecoder): with these, the socket reads into one reused buffer. */
  onPacketStart?(h: PacketHeader, headerSum: number): void;
  onPacketData?(h: PacketHeader, piece: Buffer, at: number): void;
  onPacketEnd?(h: PacketHeader): void;
  /** Messages that answer no pending request (done, error for a get). */
  onMessage?(h: Header, body: Buffer): void;
  onClose?(err: SwarmError | null): void;
}

/** Size of the reused read buffer of streaming connections. */
export const READ_BUFFER_BYTES = 256 << 10;

interface Pending {
  resolve: (v: { header: Header; body: Buffer }) => void;
  reject: (e: SwarmError) => void;
  timer: NodeJS.Timeout;
}

export function parseHostPort(s: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new SwarmError(ERROR_CODES.USAGE, `not a host:port: ${s}`);
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SwarmError(ERROR_CODES.USAGE, `bad port in ${s}`);
  return { host: m[1]!, port };
}

export class FramedClient {
  private socket: net.Socket | null = null;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  readonly address: string;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly handler: PeerClientHandler = {},
    private readonly timeoutMs = 10_000,
    private readonly replies: ProtocolSide = 'peerReply',
    /** Streaming mode: the buffer every socket read lands in (default: a fresh one). */
    private readonly readBuffer?: Buffer,
  ) {
    this.address = `${host}:${port}`;
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
              if (!this.handler.onPacket) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'unexpected data packet');
              this.handler.onPacket(h, raw, payload);
            },
          },
      { reuseInput: this.streaming },
    );
  }

  private readonly streaming: boolean;

  private onBytes(d: Buffer): void {
    try {
      this.decoder.push(d);
    } catch (err) {
      this.destroy(asSwarmError(err));
    }
  }

  connect(): Promise<this> {
    return new Promise((resolve, reject) => {
      // Streaming handlers copy every byte out during the call, so one read buffer serves the
      // whole connection: no allocation per read, and reads of up to READ_BUFFER_BYTES.
      const socket = this.streaming
        ? net.connect({ host: this.host, port: this.port, noDelay: true, onread: { buffer: this.readBuffer ?? Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Uint8Array) => {
                this.onBytes(buf.subarray(0, n) as Buffer);
                return true;
              } } })
        : net.connect({ host: this.host, port: this.port, noDelay: true });
      this.socket = socket;
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
  request(h: Header, timeoutMs = this.timeoutMs): Promise<{ header: Header; body: Buffer }> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.closed || !this.socket) return reject(new SwarmError(ERROR_CODES.PEER_CLOSED, `not connected to ${this.address}`));
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SwarmError(ERROR_CODES.PEER_TIMEOUT, `${this.address} did not answer "${h.t}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.write({ ...h, id });
    });
  }

  /** Send without waiting (get, cancel). Returns false when the socket wants a drain. */
  write(h: Header): boolean {
    if (this.closed || !this.socket) return false;
    let ok = true;
    for (const b of encodeFrame(h)) ok = this.socket.write(b);
    return ok;
  }

  newId(): number {
    return this.nextId++;
  }

  private onMessage(h: Header, body: Buffer): void {
    checkMessage(this.replies, h);
    const id = h.id as number | undefined;
    const p = id !== undefined ? this.pending.get(id) : undefined;
    if (p) {
      this.pending.delete(id!);
      clearTimeout(p.timer);
      if (h.t === 'error') p.reject(fromWire(h as { code?: unknown; message?: unknown }));
      else p.resolve({ header: h, body });
      return;
    }
    if (h.t === 'error' && id === undefined) {
      this.destroy(fromWire(h as { code?: unknown; message?: unknown }));
      return;
    }
    this.handler.onMessage?.(h, body);
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
    this.handler.onClose?.(err);
  }
}
