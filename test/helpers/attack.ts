/**
 * Raw-socket attackers for the limits tests (small scale, in `npm test`) and the hostile suite
 * (full scale, `npm run test:hostile`): connections that never read, that dribble a byte at a
 * time, that pipeline requests without waiting, that ask and drop; plus the gauges the tests read
 * (a process's RSS and open descriptors from /proc, socket counts). Everything connects to
 * 127.0.0.0/8 only; attackers may bind other loopback addresses (127.0.0.2 ...) so per-address
 * caps can be told apart from the global ones.
 *
 * Every socket a helper opens is in a `Crowd` whose teardown is registered when it is created.
 */
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { encodeFrameBuffer, type Header } from '../../lib/protocol/frame.js';
import { helloMessage } from '../../lib/protocol/messages.js';

export type Teardown = { teardown(fn: () => unknown): void };

const HELLO_FIELDS = { peer: 'a77ac4e2a77ac4e2', agent: 'attacker/1' };

/** The bytes of a protocol-2 hello. */
export function helloBytes(): Buffer {
  return encodeFrameBuffer(helloMessage(HELLO_FIELDS));
}

export function frame(h: Header): Buffer {
  return encodeFrameBuffer(h);
}

/** `n` loopback source addresses from 127.0.0.<first> on (127.0.0.254 is followed by 127.0.1.1). */
export function loopbackAddresses(n: number, first = 2): string[] {
  return Array.from({ length: n }, (_, i) => {
    const k = first + i - 1;
    return `127.0.${Math.floor(k / 254)}.${(k % 254) + 1}`;
  });
}

/** Bytes of resident memory of a process (VmRSS), `self` or a PID. */
export function rssBytes(pid: number | 'self' = 'self'): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Open descriptors of a process, and how many of them are sockets. */
export function fdCounts(pid: number | 'self' = 'self'): { fds: number; sockets: number; files: number } {
  let fds = 0;
  let sockets = 0;
  let files = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    fds++;
    if (target.startsWith('socket:')) sockets++;
    else if (target.startsWith('/')) files++;
  }
  return { fds, sockets, files };
}

/** Poll `pred` every `stepMs` until it holds or `ms` passes; resolves whether it held. */
export async function waitUntil(pred: () => boolean, ms: number, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (pred()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Sample `gauge` every `stepMs` while `during` runs; resolves with its result and the peak. */
export async function peakDuring<T>(gauge: () => number, during: Promise<T>, stepMs = 20): Promise<{ result: T; peak: number }> {
  let peak = gauge();
  const timer = setInterval(() => {
    peak = Math.max(peak, gauge());
  }, stepMs);
  try {
    const result = await during;
    peak = Math.max(peak, gauge());
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}

export interface RawOptions {
  host?: string;
  localAddress?: string;
  /**
   * Default true: read and discard what the server sends (so its close is seen). False: never
   * read a byte, so what the server sends piles up on its side; such a socket cannot see the
   * server close it, so check the server's own gauges instead.
   */
  read?: boolean;
}

/**
 * A set of attacking sockets, destroyed at teardown. `closedByServer` counts sockets the server
 * closed (we did not call destroy on them).
 */
export class Crowd {
  readonly sockets = new Set<net.Socket>();
  closedByServer = 0;
  connectFailures = 0;
  private ours = new WeakSet<net.Socket>();

  constructor(t: Teardown) {
    t.teardown(() => this.destroy());
  }

  get open(): number {
    return this.sockets.size;
  }

  /** Connect one socket; resolves when connected, or null when the connect failed. */
  connect(port: number, o: RawOptions = {}): Promise<net.Socket | null> {
    return new Promise((resolve) => {
      const s = net.connect({ port, host: o.host ?? '127.0.0.1', ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
      s.setNoDelay(true);
      if (o.read === false) s.pause();
      else s.on('data', () => {});
      this.sockets.add(s);
      let connected = false;
      s.on('error', () => {});
      s.once('connect', () => {
        connected = true;
        resolve(s);
      });
      s.once('close', () => {
        this.sockets.delete(s);
        if (!connected) {
          this.connectFailures++;
          resolve(null);
        } else if (!this.ours.has(s)) this.closedByServer++;
      });
    });
  }

  /** Connect `n` sockets, at most `concurrency` connects in flight, spread over `localAddresses`. */
  async connectMany(port: number, n: number, o: RawOptions & { localAddresses?: string[]; concurrency?: number; first?: Buffer } = {}): Promise<net.Socket[]> {
    const out: net.Socket[] = [];
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        const localAddress = o.localAddresses ? o.localAddresses[i % o.localAddresses.length] : o.localAddress;
        const s = await this.connect(port, { ...o, ...(localAddress ? { localAddress } : {}) });
        if (!s) continue;
        if (o.first) s.write(o.first);
        out.push(s);
      }
    };
    await Promise.all(Array.from({ length: Math.min(n, o.concurrency ?? 64) }, worker));
    return out;
  }

  /** Close one socket from our side. `reset`: RST instead of FIN. */
  drop(s: net.Socket, reset = false): void {
    this.ours.add(s);
    if (reset && typeof s.resetAndDestroy === 'function' && !s.destroyed) s.resetAndDestroy();
    else s.destroy();
  }

  destroy(): void {
    for (const s of [...this.sockets]) this.drop(s);
  }
}

/**
 * Write `bytes` one `step` bytes at a time on each socket (`writes` separate writes per socket per
 * turn, every `intervalMs` or every event-loop turn), until `stopAt` (ms clock), the bytes run out,
 * or every socket is closed. Resolves with bytes written per socket.
 */
export async function dribble(sockets: net.Socket[], bytes: Buffer, o: { step?: number; writes?: number; intervalMs?: number; stopAt: number }): Promise<number[]> {
  const step = o.step ?? 1;
  const sent = sockets.map(() => 0);
  for (;;) {
    let live = 0;
    for (let i = 0; i < sockets.length; i++) {
      const s = sockets[i]!;
      if (s.destroyed || sent[i]! >= bytes.length) continue;
      live++;
      for (let w = 0; w < (o.writes ?? 1) && sent[i]! < bytes.length; w++) {
        // a writer that respects its own backpressure: a server that stopped reading stops us too
        if (s.writableLength > 64 << 10) break;
        s.write(bytes.subarray(sent[i]!, sent[i]! + step));
        sent[i]! += step;
      }
    }
    if (live === 0 || Date.now() >= o.stopAt) return sent;
    await new Promise((r) => (o.intervalMs ? setTimeout(r, o.intervalMs) : setImmediate(r)));
  }
}

/**
 * Pipeline requests on one socket without ever reading the answers, for `ms`: `make(i)` gives the
 * i-th request. Writes while the socket takes them; when the server stops reading (its window is
 * full), our writes back up and we wait for a drain that may never come. Resolves with how many
 * requests and bytes the kernel took from us.
 */
export async function pipelineFor(s: net.Socket, make: (i: number) => Buffer, ms: number): Promise<{ requests: number; bytes: number }> {
  const stopAt = Date.now() + ms;
  let requests = 0;
  let bytes = 0;
  while (Date.now() < stopAt && !s.destroyed) {
    // batches of requests per write: thousands a second, the way a hostile client would
    const batch: Buffer[] = [];
    for (let k = 0; k < 64; k++) batch.push(make(requests + k));
    const b = Buffer.concat(batch);
    const ok = s.write(b);
    requests += batch.length;
    bytes += b.length;
    if (!ok) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(1, stopAt - Date.now()));
        function done() {
          clearTimeout(timer);
          s.off('drain', done);
          s.off('close', done);
          resolve();
        }
        s.once('drain', done);
        s.once('close', done);
      });
    } else await new Promise((r) => setImmediate(r));
  }
  // what is still queued on our side never reached the server
  requests -= Math.floor((s.writableLength / Math.max(1, bytes)) * requests);
  bytes -= s.writableLength;
  return { requests, bytes };
}

/** Listen on 127.0.0.1 (a free port); at teardown every socket in `sockets` is destroyed and the server closed. */
export async function listenOnLoopback(t: Teardown, server: net.Server, sockets: Set<net.Socket>): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as net.AddressInfo).port;
}
