/**
 * A peer host runs PeerFetchers for several peers and the buffers they fill. `PeerHostCore` is
 * the logic; `workers/peer-worker.ts` runs one in a worker thread (messages over parentPort, chunk
 * buffers transferred), `InlinePeerHost` runs one on the main thread (the benchmark baseline).
 * `WorkerPeerHost` is the main thread's handle on a worker.
 */
import { Worker } from 'node:worker_threads';
import { workerUrl } from '../paths.js';
import { ERROR_CODES, SwarmError, toWire } from '../errors.js';
import type { FromPeerHost, ToPeerHost } from './thread-messages.js';
import { PeerFetcher, type BufferSource, type FetchTimes } from './peer-fetcher.js';
import { performance } from 'node:perf_hooks';
import type { PeerThreadTimes } from './breakdown.js';

const BYTES_REPORT_MS = 100;
/**
 * Free buffers kept for reuse per host; more are dropped to the GC. As many as a download keeps
 * in flight by default (48 MiB of 1 MiB chunks, and some slack): every buffer reused is one that
 * is not zero-filled and page-faulted in again, which showed as a slow copy in profiles.
 */
const MAX_FREE_BUFFERS = 64;

export class PeerHostCore implements BufferSource {
  private readonly fetchers = new Map<number, PeerFetcher>();
  private readonly free: Uint8Array[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly times: FetchTimes = { copyMs: 0, checksumMs: 0 };
  private readonly elu = performance.eventLoopUtilization();

  constructor(private readonly post: (m: FromPeerHost, transfer?: ArrayBuffer[]) => void) {
    this.timer = setInterval(() => this.reportBytes(), BYTES_REPORT_MS);
  }

  /** Busy time of this thread's event loop since the host started, and copy/checksum shares. */
  stats(): PeerThreadTimes {
    const e = performance.eventLoopUtilization(this.elu);
    return { busyMs: e.active, copyMs: this.times.copyMs, checksumMs: this.times.checksumMs };
  }

  acquire(bytes: number): Uint8Array {
    for (let i = this.free.length - 1; i >= 0; i--) {
      if (this.free[i]!.byteLength >= bytes) return this.free.splice(i, 1)[0]!;
    }
    // own ArrayBuffer per chunk (a transfer moves the whole ArrayBuffer), not zero-filled: every
    // byte is written by packets before the chunk leaves this thread
    return Buffer.allocUnsafeSlow(bytes);
  }

  release(buf: Uint8Array): void {
    if (this.free.length < MAX_FREE_BUFFERS) this.free.push(buf);
  }

  private reportBytes(): void {
    for (const f of this.fetchers.values()) this.flushBytes(f);
  }

  private flushBytes(f: PeerFetcher): void {
    const { n, junk } = f.takeBytes();
    if (n > 0) this.post({ type: 'bytes', peerId: f.peerId, n, junk });
  }

  handle(m: ToPeerHost): void {
    switch (m.type) {
      case 'connect': {
        const f = new PeerFetcher(m.peerId, m.host, m.port, m.cid, m.chunks, m.hello, m.bits, this, (msg, transfer) => {
          if (msg.type === 'closed' || msg.type === 'chunk') this.flushBytes(f);
          if (msg.type === 'closed') this.fetchers.delete(m.peerId);
          this.post(msg, transfer);
        }, this.times);
        this.fetchers.set(m.peerId, f);
        f.connect().catch(() => {}); // failure arrives as 'closed'
        return;
      }
      case 'get':
        this.fetchers.get(m.peerId)?.get(m.reqId, m.cid, m.from, m.to, m.size, m.chunkBytes);
        return;
      case 'cancel':
        this.fetchers.get(m.peerId)?.cancel(m.reqId);
        return;
      case 'buffer':
        this.release(m.bytes);
        return;
      case 'close':
        this.fetchers.get(m.peerId)?.destroy();
        return;
      case 'have':
        for (const f of this.fetchers.values()) if (f.cid === m.cid) f.have(m.chunks);
        return;
      case 'stats':
        this.post({ type: 'stats', peerId: -1, times: this.stats() });
        return;
      case 'shutdown':
        this.shutdown();
        return;
    }
  }

  shutdown(): void {
    clearInterval(this.timer);
    for (const f of this.fetchers.values()) f.destroy();
    this.fetchers.clear();
    this.free.length = 0;
  }
}

export interface PeerHost {
  send(m: ToPeerHost, transfer?: ArrayBuffer[]): void;
  /** Timings of the thread (null when the host shares the main thread). */
  stats(): Promise<PeerThreadTimes | null>;
  close(): Promise<void>;
}

export const PEER_WORKER_URL = workerUrl('peer-worker.js');

export class WorkerPeerHost implements PeerHost {
  private readonly worker: Worker;
  private exited = false;

  private statsWaiter: ((t: PeerThreadTimes) => void) | null = null;

  constructor(onMessage: (m: FromPeerHost) => void, onFatal: (err: SwarmError) => void) {
    this.worker = new Worker(PEER_WORKER_URL);
    this.worker.on('message', (m: FromPeerHost) => {
      if (m.type === 'stats') {
        this.statsWaiter?.(m.times);
        this.statsWaiter = null;
      } else onMessage(m);
    });
    this.worker.on('error', (err) => onFatal(new SwarmError(ERROR_CODES.INTERNAL, `peer worker failed: ${err.message}`)));
    this.worker.on('exit', () => {
      this.exited = true;
    });
  }

  send(m: ToPeerHost, transfer?: ArrayBuffer[]): void {
    if (!this.exited) this.worker.postMessage(m, transfer ?? []);
  }

  stats(): Promise<PeerThreadTimes | null> {
    if (this.exited) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.statsWaiter = resolve;
      this.send({ type: 'stats' });
      setTimeout(() => resolve(null), 1_000).unref();
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    this.send({ type: 'shutdown' });
    await this.worker.terminate();
  }
}

export class InlinePeerHost implements PeerHost {
  private readonly core: PeerHostCore;

  constructor(onMessage: (m: FromPeerHost) => void) {
    // deliver asynchronously, as a worker would, so the coordinator never re-enters itself
    this.core = new PeerHostCore((m) => queueMicrotask(() => onMessage(m)));
  }

  send(m: ToPeerHost): void {
    try {
      this.core.handle(m);
    } catch (err) {
      throw new SwarmError(ERROR_CODES.INTERNAL, `inline peer host: ${toWire(err).message}`);
    }
  }

  /** Copy and checksum times; the main thread's busy time is reported as coordination. */
  async stats(): Promise<PeerThreadTimes | null> {
    return { ...this.core.stats(), busyMs: 0 };
  }

  async close(): Promise<void> {
    this.core.shutdown();
  }
}

/**
 * The peer hosts of one download, started before the download knows its peers (their threads
 * boot while the name is resolved); `bind` then connects them to the coordinator.
 */
export class PeerHostGroup {
  readonly hosts: PeerHost[] = [];
  private onMessage: (m: FromPeerHost) => void = () => {};
  private onFatal: (err: SwarmError) => void = () => {};
  readonly inline: boolean;

  constructor(threads: number) {
    this.inline = threads === 0;
    const msg = (m: FromPeerHost) => this.onMessage(m);
    const fatal = (e: SwarmError) => this.onFatal(e);
    for (let i = 0; i < Math.max(1, threads); i++) this.hosts.push(this.inline ? new InlinePeerHost(msg) : new WorkerPeerHost(msg, fatal));
  }

  bind(onMessage: (m: FromPeerHost) => void, onFatal: (err: SwarmError) => void): void {
    this.onMessage = onMessage;
    this.onFatal = onFatal;
  }

  async close(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.close().catch(() => {})));
  }
}
