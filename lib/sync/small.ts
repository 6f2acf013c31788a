/**
 * Many small files, fast (issue "keep folders in step", item 6): files of one chunk (≤ 1 MiB) are
 * fetched over the syncer's own connection to each peer, requests pipelined, and landed in batches
 * with one durability barrier per batch. Big files keep the chunked `get` from every holder.
 *
 *   Pipe (one per peer connection): `get {cid, from: 0, to: 1}` × up to PIPE_FILES in flight
 *      └► packets for that request id, in order ─► the file's buffer ─► `done`
 *         └► verified: BLAKE3 of the bytes, as the manifest's one chunk hash, must give the
 *            content id asked for (a one-chunk manifest is its size, chunk size and that hash),
 *            then `have` (the peer's upload slot is freed, as for any swarm downloader). Sync
 *            verifies on the chunk pool, in batches, writing each good file to its temp file
 *            there (landing.ts, stage-files.ts); the pipe's room is free meanwhile.
 *   Lander (lander.ts): each verified file in a temp file beside its target, then per batch one
 *      durability barrier and the renames.
 *
 * No bytes reach a final name unverified, and a final name holds either its old bytes or the new
 * ones, whole, whatever moment the process is killed at; temp files left by a killed process are
 * removed when sync starts (`clearTemps`). The protocol is protocol 2's, unchanged: `get`, packets,
 * `done`/`error`/`busy`, `have`.
 */
import { ERROR_CODES, SwarmError, fromWire } from '../errors.js';
import { chunkBytesFor } from '../chunking.js';
import { chunkHash } from '../hashing.js';
import { makeManifest, type Manifest } from '../manifest.js';
import { packetChecksumOk, type PacketHeader } from '../protocol/packet.js';
import { add16, sum16 } from '../protocol/checksum.js';
import { pieceSum, type ChecksumArena } from '../protocol/checksum-wasm.js';
import type { PeerClient } from '../peer/client.js';

/** Requests in flight on one connection, and their bytes. */
const PIPE_FILES = 64;
const PIPE_BYTES = 8 << 20;
/** A pipe whose peer sends no byte of any of our requests for this long stalls (`busy` is no byte). */
const REQUEST_IDLE_MS = 15_000;
/**
 * And a request not done this long after its first byte fails whatever the peer says (a peer that
 * sends a byte every few seconds would otherwise hold it, and its share of the syncer's window,
 * forever): 1 MiB in 30 s is a floor of 35 KB/s.
 */
const REQUEST_DEADLINE_MS = 30_000;
/** A pipe whose request ran out of time takes no new requests for this long. */
const STALL_PAUSE_MS = 60_000;
/** Requests queued on one pipe at most (in flight and waiting): no one peer holds the whole window. */
export const PIPE_MAX_LOAD = 192;

export interface PipeTimes {
  idleMs: number;
  deadlineMs: number;
  pauseMs: number;
}

/** True when a file of `size` bytes is fetched as a small file (one chunk). */
export function isSmall(size: number): boolean {
  return size <= chunkBytesFor(size);
}

/** The manifest of a one-chunk (or empty) file holding `data`. */
export function smallManifest(data: Uint8Array): Manifest {
  const hashes = data.length === 0 ? Buffer.alloc(0) : chunkHash(data);
  return makeManifest(data.length, chunkBytesFor(data.length), hashes);
}

interface Req {
  id: number;
  cid: string;
  size: number;
  /** Allocated when the request goes out, not while it waits (a queue of 1 MiB claims costs nothing). */
  buf: Buffer | null;
  got: number;
  sent: boolean;
  /** What checks the bytes (and takes them): a value once they are the content asked for, null when not. */
  verify: Verify<unknown>;
  resolve: (r: unknown) => void;
  reject: (e: unknown) => void;
  /** Its deadline, armed by its first packet. */
  timer: NodeJS.Timeout | null;
}

/**
 * Checks a fetched file's bytes against the content id asked for: a value when they are that
 * content (it may also take the bytes: they are not used after), null when they are not.
 */
export type Verify<T> = (data: Buffer, cid: string) => T | null | Promise<T | null>;

/** The check made on the calling thread: BLAKE3 of the bytes as a one-chunk manifest. */
const verifyHere: Verify<{ data: Buffer; manifest: Manifest }> = (data, cid) => {
  const manifest = smallManifest(data);
  return manifest.cid === cid ? { data, manifest } : null;
};

/** The least loaded usable pipe; 'wait' when some are open but all full or paused, null when none is open. */
export function leastLoaded(pipes: readonly (Pipe | undefined)[], now: number): Pipe | 'wait' | null {
  let best: Pipe | null = null;
  let open = false;
  for (const p of pipes) {
    if (!p?.open) continue;
    open = true;
    if (p.usable(now) && (!best || p.load < best.load)) best = p;
  }
  return best ?? (open ? 'wait' : null);
}

/** Pipelined one-chunk fetches over one peer connection (the syncer's watch connection). */
export class Pipe {
  private readonly inflight = new Map<number, Req>();
  private readonly waiting: Req[] = [];
  /** Bytes of the requests in flight and of those whose bytes are being checked. */
  private bytes = 0;
  /** Requests whose bytes all came and are being checked (their bytes still count in `bytes`). */
  private checking = 0;
  private closed = false;
  /** Until when this pipe takes nothing new (a request of ours ran out of time on it). */
  private pausedUntil = 0;
  private readonly times: PipeTimes;
  /** When the peer last sent bytes of (or ended) one of our requests, or we began to wait. */
  private lastProgress = 0;
  private clock: NodeJS.Timeout | null = null;
  /** Requests we cancelled lately: what the peer had already sent for them is dropped quietly. */
  private readonly cancelled = new Set<number>();

  /** `readArena`: the connection's read buffer in wasm memory, where pieces are summed as they lie (null: summed in JS). */
  constructor(
    private readonly c: Pick<PeerClient, 'address' | 'connected' | 'newId' | 'write'>,
    times: Partial<PipeTimes> = {},
    private readonly readArena: ChecksumArena | null = null,
  ) {
    this.times = { idleMs: REQUEST_IDLE_MS, deadlineMs: REQUEST_DEADLINE_MS, pauseMs: STALL_PAUSE_MS, ...times };
  }

  get load(): number {
    return this.inflight.size + this.waiting.length;
  }

  get open(): boolean {
    return !this.closed && this.c.connected;
  }

  /** Open, not paused for a stall, and with room in its queue. */
  usable(now: number): boolean {
    return this.open && this.pausedUntil <= now && this.load < PIPE_MAX_LOAD;
  }

  /**
   * Content `cid` (one chunk of `size` bytes), fetched and checked by `verify`: by default the
   * verified bytes and manifest. A peer is told `have` only once the bytes are verified.
   */
  fetch(cid: string, size: number): Promise<{ data: Buffer; manifest: Manifest }>;
  fetch<T>(cid: string, size: number, verify: Verify<T>): Promise<T>;
  fetch(cid: string, size: number, verify: Verify<unknown> = verifyHere): Promise<unknown> {
    if (size === 0) {
      // nothing to ask: the empty file's content id is known
      return Promise.resolve(verify(Buffer.alloc(0), cid)).then((v) => {
        if (v === null) throw new SwarmError(ERROR_CODES.HASH_MISMATCH, 'an empty file announced with another content id');
        return v;
      });
    }
    if (!this.open) return Promise.reject(new SwarmError(ERROR_CODES.PEER_CLOSED, `not connected to ${this.c.address}`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: 0, cid, size, buf: null, got: 0, sent: false, verify, resolve, reject, timer: null });
      this.send();
    });
  }

  private send(): void {
    if (this.closed) return; // close() fails what waits; nothing new goes out
    // (one file bigger than PIPE_BYTES goes alone: nothing else in flight or being checked)
    while (this.waiting.length && this.inflight.size < PIPE_FILES && (this.bytes < PIPE_BYTES || (this.inflight.size === 0 && this.checking === 0))) {
      const r = this.waiting.shift()!;
      r.id = this.c.newId();
      // memory of its own (never a slice of Node's shared pool): it may be moved to a pool thread
      r.buf = Buffer.allocUnsafeSlow(r.size);
      if (this.inflight.size === 0) this.lastProgress = Date.now(); // the wait starts now
      this.inflight.set(r.id, r);
      this.bytes += r.size;
      this.c.write({ t: 'get', id: r.id, cid: r.cid, from: 0, to: 1 });
    }
    this.runClock();
  }

  /**
   * Two clocks. The pipe's: while requests are out, the peer must send bytes of one of them (or
   * end one) at least every idleMs: a peer answers requests in turn, so the ones queued behind a
   * slow honest transfer wait without failing, while `busy` alone, or silence, stalls the pipe.
   * A request's: once its first byte came, it must be done within deadlineMs (1 MiB in 30 s is
   * 35 KB/s): a peer that dribbles cannot hold it, nor the syncer's window, for long.
   */
  private runClock(): void {
    if (this.inflight.size === 0 || this.closed) {
      if (this.clock) clearInterval(this.clock);
      this.clock = null;
      return;
    }
    if (this.clock) return;
    this.clock = setInterval(() => {
      if (this.inflight.size === 0) return this.runClock();
      if (Date.now() - this.lastProgress <= this.times.idleMs) return;
      this.stalled(new SwarmError(ERROR_CODES.PEER_TIMEOUT, `${this.c.address} sent nothing for ${this.times.idleMs} ms`));
    }, Math.max(10, Math.min(1_000, Math.floor(this.times.idleMs / 4))));
    this.clock.unref();
  }

  /** A request's deadline, from its first byte. */
  private armDeadline(r: Req): void {
    r.timer = setTimeout(() => this.stalled(new SwarmError(ERROR_CODES.PEER_TIMEOUT, `${this.c.address} did not send it within ${this.times.deadlineMs} ms of its first byte (too slow)`)), this.times.deadlineMs);
    r.timer.unref();
  }

  private cancel(r: Req): void {
    this.c.write({ t: 'cancel', id: r.id });
    this.cancelled.add(r.id);
    if (this.cancelled.size > 1_024) this.cancelled.delete(this.cancelled.values().next().value!);
  }

  /**
   * A request ran out of time (or the pipe's idle clock did): every request of this pipe fails now,
   * in flight (cancelled) or waiting, since they would wait as long (their tickets go to other
   * holders or retry later), and the pipe takes nothing for a while. Failing only the one whose
   * deadline passed let a peer sending one byte to another request every few seconds hold all 64
   * for ~15 minutes (hostile review 55).
   */
  private stalled(err: SwarmError): void {
    this.pausedUntil = Date.now() + this.times.pauseMs;
    for (const w of this.waiting.splice(0)) w.reject(err);
    for (const r of [...this.inflight.values()]) {
      this.cancel(r);
      this.finish(r, err);
    }
  }

  private finish(r: Req, err: SwarmError | null): void {
    if (!this.inflight.delete(r.id)) return;
    if (r.timer) clearTimeout(r.timer);
    r.timer = null;
    if (err) {
      this.bytes -= r.size;
      r.reject(err);
    } else this.check(r, r.buf!);
    r.buf = null;
    this.send();
  }

  /**
   * All bytes of `r` came: verified (maybe later, on a pool thread). Its place among the requests
   * in flight is free at once, its bytes count against PIPE_BYTES until the check is over: a pool
   * busy elsewhere cannot make a pipe hold more than that (hostile review 54: 60 MiB held).
   */
  private check(r: Req, data: Buffer): void {
    this.checking++;
    const over = () => {
      this.checking--;
      this.bytes -= r.size;
      this.send();
    };
    const bad = (e: unknown) => {
      over();
      r.reject(e);
    };
    const good = (v: unknown) => {
      over();
      if (v === null) {
        r.reject(new SwarmError(ERROR_CODES.HASH_MISMATCH, `${this.c.address} sent bytes that do not hash to ${r.cid.slice(0, 16)}…`));
        return;
      }
      // verified: tell the peer, as every swarm downloader does (its upload slot is freed)
      if (this.open) this.c.write({ t: 'have', cid: r.cid, chunks: [0] });
      r.resolve(v);
    };
    let v: unknown;
    try {
      v = r.verify(data, r.cid);
    } catch (e) {
      bad(e);
      return;
    }
    if (v instanceof Promise) v.then(good, bad);
    else good(v);
  }

  /**
   * The packet being received on a streaming connection (its pieces come as the socket reads
   * them, straight from the connection's read buffer): its request, its header's sum, its
   * payload's sum so far. One record, reused; `r` null while a packet is skipped.
   */
  private readonly cur: { r: Req | null; headerSum: number; sum: number } = { r: null, headerSum: 0, sum: 0 };

  /**
   * A streaming connection's packet begins (the sync connection reads into one reused buffer in
   * wasm memory, where each piece is summed where it lies: no copy to sum it, no allocation per
   * read). Throws for a packet of no request of ours (the connection closes).
   */
  onPacketStart(h: PacketHeader, headerSum: number): void {
    const c = this.cur;
    c.r = null;
    const r = this.inflight.get(h.requestId);
    if (!r) {
      if (this.cancelled.has(h.requestId)) return; // sent before our cancel reached it
      throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'a data packet for no request');
    }
    if (!this.inOrder(r, h)) return;
    c.r = r;
    c.headerSum = headerSum;
    c.sum = 0;
  }

  onPacketData(_h: PacketHeader, piece: Buffer, at: number): void {
    const c = this.cur;
    const r = c.r;
    if (!r?.buf) return;
    r.buf.set(piece, r.got + at);
    const partial = this.readArena?.owns(piece) ? this.readArena.sum16(piece) : sum16(piece);
    c.sum = add16(c.sum, pieceSum(partial, at));
  }

  onPacketEnd(h: PacketHeader): void {
    const c = this.cur;
    const r = c.r;
    c.r = null;
    if (!r?.buf || !this.inflight.has(r.id)) return;
    if (!packetChecksumOk(h, c.headerSum, c.sum)) {
      this.cancel(r);
      this.finish(r, new SwarmError(ERROR_CODES.BAD_CHECKSUM, `${this.c.address} sent a packet with a bad checksum`));
      return;
    }
    r.got += h.length;
    if (h.length > 0) this.lastProgress = Date.now();
    if (!r.timer) this.armDeadline(r);
  }

  /** One chunk, in order, within the size announced: anything else is a peer's mistake or lie (the request fails). */
  private inOrder(r: Req, h: PacketHeader): boolean {
    if (h.chunk === 0 && h.offset === r.got && h.offset + h.length <= r.size) return true;
    this.cancel(r);
    this.finish(r, new SwarmError(ERROR_CODES.BAD_MESSAGE, `${this.c.address} sent a packet outside the file asked for`));
    return false;
  }

  /** `done`, `error` or `busy` for one of our requests: true when it was ours (or a cancelled one). */
  onMessage(m: { t: string; id?: number; code?: string; message?: string }): boolean {
    if (m.id === undefined) return false;
    const r = this.inflight.get(m.id);
    if (!r) return this.cancelled.has(m.id) && (m.t === 'busy' || m.t === 'done' || m.t === 'error');
    if (m.t === 'busy') return true; // waiting for the peer's upload slot: the pipe's clock runs on
    this.lastProgress = Date.now();
    if (m.t === 'done') this.finish(r, r.got === r.size ? null : new SwarmError(ERROR_CODES.BAD_MESSAGE, `${this.c.address} ended the file after ${r.got} of ${r.size} bytes`));
    else if (m.t === 'error') this.finish(r, fromWire({ code: m.code, message: m.message }));
    else return false;
    return true;
  }

  close(err: SwarmError | null): void {
    if (this.closed) return;
    this.closed = true;
    if (this.clock) clearInterval(this.clock);
    this.clock = null;
    const e = err ?? new SwarmError(ERROR_CODES.PEER_CLOSED, `connection to ${this.c.address} closed`);
    for (const r of [...this.inflight.values()]) this.finish(r, e);
    for (const r of this.waiting.splice(0)) r.reject(e);
  }
}
