/**
 * Many small files, fast (issue "keep folders in step", item 6): files of one chunk (≤ 1 MiB) are
 * fetched over the syncer's own connection to each peer, requests pipelined, and landed in batches
 * with one durability barrier per batch. Big files keep the chunked `get` from every holder.
 *
 *   Pipe (one per peer connection): `get {cid, from: 0, to: 1}` × up to PIPE_FILES in flight
 *      └► packets for that request id, in order ─► the file's buffer ─► `done`
 *         └► verified: BLAKE3 of the bytes, as the manifest's one chunk hash, must give the
 *            content id asked for (a one-chunk manifest is its size, chunk size and that hash),
 *            then `have` (the peer's upload slot is freed, as for any swarm downloader)
 *   Lander: each verified file written to a temp file in its target's folder, named so that the
 *      folder watcher ignores it (its one event that counts is the rename), mtime set from the
 *      peer's index; then per batch: fdatasync of every temp file, the renames, one fsync of every
 *      folder touched.
 *
 * No bytes reach a final name unverified, and a final name holds either its old bytes or the new
 * ones, whole, whatever moment the process is killed at; temp files left by a killed process are
 * removed when sync starts (`clearTemps`). The protocol is protocol 2's, unchanged: `get`, packets,
 * `done`/`error`/`busy`, `have`.
 */
import { mkdir, open, readdir, realpath, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SwarmError, fromWire } from '../errors.js';
import { MAX_PACKET_PAYLOAD_BYTES, STATE_DIR_NAME, TEMP_MARK } from '../constants.js';
import { chunkBytesFor } from '../chunking.js';
import { chunkHash } from '../hashing.js';
import { makeManifest, type Manifest } from '../manifest.js';
import { packetChecksumOk, packetHeaderSum, type PacketHeader } from '../protocol/packet.js';
import { add16, sum16 } from '../protocol/checksum.js';
import { arena, pieceSum, type ChecksumArena } from '../protocol/checksum-wasm.js';
import type { PeerClient } from '../peer/client.js';
import type { FileStat } from '../share/scanner.js';
import { isInside } from '../share/names.js';
import { pidAlive } from '../storage/lock.js';
import { notSharedName } from '../share/scanner.js';
import { nameProblem } from '../protocol/names.js';

/** Folders clearTemps() looks into at most. */
const MAX_SWEEP_DIRS = 100_000;
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

/** Wasm memory the payload of one packet is summed in (null: no wasm SIMD here, sums in JS). */
let scratch: ChecksumArena | null | undefined;

/**
 * The one's-complement sum of a packet's payload (its pieces, in order). The pieces are copied
 * into wasm memory and summed there at once: a copy costs a tenth of what summing in JS does.
 */
function payloadSum(payload: Buffer[]): number {
  if (scratch === undefined) scratch = arena(MAX_PACKET_PAYLOAD_BYTES);
  let total = 0;
  for (const p of payload) total += p.length;
  if (scratch && total <= scratch.bytes.length) {
    let at = 0;
    for (const p of payload) at += p.copy(scratch.bytes, at);
    return scratch.sum16(scratch.bytes.subarray(0, total));
  }
  let sum = 0;
  for (let i = 0, at = 0; i < payload.length; at += payload[i]!.length, i++) sum = add16(sum, pieceSum(sum16(payload[i]!), at));
  return sum;
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
  resolve: (r: { data: Buffer; manifest: Manifest }) => void;
  reject: (e: SwarmError) => void;
  /** Its deadline, armed by its first packet. */
  timer: NodeJS.Timeout | null;
}

/** Pipelined one-chunk fetches over one peer connection (the syncer's watch connection). */
export class Pipe {
  private readonly inflight = new Map<number, Req>();
  private readonly waiting: Req[] = [];
  private bytes = 0;
  private closed = false;
  /** Until when this pipe takes nothing new (a request of ours ran out of time on it). */
  private pausedUntil = 0;
  private readonly times: PipeTimes;
  /** When the peer last sent bytes of (or ended) one of our requests, or we began to wait. */
  private lastProgress = 0;
  private clock: NodeJS.Timeout | null = null;
  /** Requests we cancelled lately: what the peer had already sent for them is dropped quietly. */
  private readonly cancelled = new Set<number>();

  constructor(
    private readonly c: Pick<PeerClient, 'address' | 'connected' | 'newId' | 'write'>,
    times: Partial<PipeTimes> = {},
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

  /** The verified bytes and manifest of content `cid` (one chunk of `size` bytes). */
  fetch(cid: string, size: number): Promise<{ data: Buffer; manifest: Manifest }> {
    if (size === 0) {
      // nothing to ask: the empty file's content id is known
      const manifest = smallManifest(Buffer.alloc(0));
      return manifest.cid === cid ? Promise.resolve({ data: Buffer.alloc(0), manifest }) : Promise.reject(new SwarmError(ERROR_CODES.HASH_MISMATCH, 'an empty file announced with another content id'));
    }
    if (!this.open) return Promise.reject(new SwarmError(ERROR_CODES.PEER_CLOSED, `not connected to ${this.c.address}`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: 0, cid, size, buf: null, got: 0, sent: false, resolve, reject, timer: null });
      this.send();
    });
  }

  private send(): void {
    if (this.closed) return; // close() fails what waits; nothing new goes out
    while (this.waiting.length && this.inflight.size < PIPE_FILES && (this.bytes < PIPE_BYTES || this.inflight.size === 0)) {
      const r = this.waiting.shift()!;
      r.id = this.c.newId();
      r.buf = Buffer.allocUnsafe(r.size);
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
      const err = new SwarmError(ERROR_CODES.PEER_TIMEOUT, `${this.c.address} sent nothing for ${this.times.idleMs} ms`);
      this.stalled(err);
      for (const r of [...this.inflight.values()]) {
        this.cancel(r);
        this.finish(r, err);
      }
    }, Math.max(10, Math.min(1_000, Math.floor(this.times.idleMs / 4))));
    this.clock.unref();
  }

  /** A request's deadline, from its first byte. */
  private armDeadline(r: Req): void {
    r.timer = setTimeout(() => {
      this.cancel(r);
      const err = new SwarmError(ERROR_CODES.PEER_TIMEOUT, `${this.c.address} did not send it within ${this.times.deadlineMs} ms of its first byte (too slow)`);
      this.stalled(err);
      this.finish(r, err);
    }, this.times.deadlineMs);
    r.timer.unref();
  }

  private cancel(r: Req): void {
    this.c.write({ t: 'cancel', id: r.id });
    this.cancelled.add(r.id);
    if (this.cancelled.size > 1_024) this.cancelled.delete(this.cancelled.values().next().value!);
  }

  /**
   * A request ran out of time: the ones still waiting here would wait as long, so they fail now
   * (their tickets go to other holders or retry later), and the pipe takes nothing for a while.
   */
  private stalled(err: SwarmError): void {
    this.pausedUntil = Date.now() + this.times.pauseMs;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  private finish(r: Req, err: SwarmError | null): void {
    if (!this.inflight.delete(r.id)) return;
    this.bytes -= r.size;
    if (r.timer) clearTimeout(r.timer);
    r.timer = null;
    if (err) r.reject(err);
    else {
      const data = r.buf!;
      const manifest = smallManifest(data);
      if (manifest.cid !== r.cid) r.reject(new SwarmError(ERROR_CODES.HASH_MISMATCH, `${this.c.address} sent bytes that do not hash to ${r.cid.slice(0, 16)}…`));
      else {
        // verified: tell the peer, as every swarm downloader does (its upload slot is freed)
        this.c.write({ t: 'have', cid: r.cid, chunks: [0] });
        r.resolve({ data, manifest });
      }
    }
    this.send();
  }

  /** A data packet on the connection: true when it answers one of our requests (or a cancelled one). */
  onPacket(h: PacketHeader, headerBytes: Buffer, payload: Buffer[]): boolean {
    const r = this.inflight.get(h.requestId);
    if (!r) return this.cancelled.has(h.requestId); // sent before our cancel reached it
    // one chunk, in order, within the size announced: anything else is a peer's mistake or lie
    if (h.chunk !== 0 || h.offset !== r.got || h.offset + h.length > r.size) {
      this.cancel(r);
      this.finish(r, new SwarmError(ERROR_CODES.BAD_MESSAGE, `${this.c.address} sent a packet outside the file asked for`));
      return true;
    }
    // the packet's own checksum, as every download checks it (BLAKE3 of the file comes at the end)
    if (!packetChecksumOk(h, packetHeaderSum(headerBytes), payloadSum(payload))) {
      this.cancel(r);
      this.finish(r, new SwarmError(ERROR_CODES.BAD_CHECKSUM, `${this.c.address} sent a packet with a bad checksum`));
      return true;
    }
    for (const p of payload) {
      p.copy(r.buf!, r.got);
      r.got += p.length;
    }
    if (h.length > 0) this.lastProgress = Date.now();
    if (!r.timer) this.armDeadline(r);
    return true;
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

/** A verified file written to a temp file, waiting for its batch. */
export interface Staged {
  name: string;
  manifest: Manifest;
  tmp: string;
  fh: FileHandle;
  /** Run just before the rename (what sync does with the version it replaces). */
  before: () => Promise<void>;
}

export interface Landed {
  name: string;
  st: FileStat;
  manifest: Manifest;
}

/** What sync's temp files are called: beside their target, ignored by the scanner (TEMP_MARK). */
export const SYNC_TEMP_PREFIX = `${TEMP_MARK}sync-`;
const SYNC_TEMP = new RegExp(`^${SYNC_TEMP_PREFIX.replace(/[.-]/g, '\\$&')}(\\d+)-\\d+$`);

/** A temp file exactly as sync names it, left by a process that is gone (never one of ours). */
export function isStaleSyncTemp(name: string): boolean {
  const m = SYNC_TEMP.exec(name);
  if (!m) return false;
  const pid = Number(m[1]);
  return pid !== process.pid && !pidAlive(pid);
}

/**
 * Temp files and batch commits in one share. A temp file is made in its target's own folder
 * (`.swarm-tmp-sync-PID-N`, a name the scanner ignores, short whatever the target's name), so the
 * rename is within one folder and the file system allocates its inode near the folder's: one
 * staging folder for every file made ext4 search one inode group (measured: 10,000 files of
 * 16 KiB cost 1.7-2.3 s of kernel time through one folder, 0.2-0.3 s beside their targets).
 */
export class Lander {
  /** Where an older swarm staged files (emptied at start). */
  readonly oldTmpDir: string;
  private n = 0;
  private realRoot = '';
  /** Folders known to exist inside the share (checked once). */
  private readonly dirsOk = new Set<string>();
  /** Folders made for staged files since the last commit: their entries are flushed with it. */
  private newDirs = new Set<string>();

  constructor(private readonly root: string) {
    this.oldTmpDir = path.join(root, STATE_DIR_NAME, 'tmp');
  }

  /**
   * Remove what a killed process left: sync temp files anywhere in the share (only one sync runs
   * per folder: syncer.ts holds its lock, so none of them is another's), and DIR/.swarm/tmp.
   */
  async clearTemps(): Promise<void> {
    for (const f of await readdir(this.oldTmpDir).catch(() => [] as string[])) await unlink(path.join(this.oldTmpDir, f)).catch(() => {});
    const stack = [this.root];
    for (let dirs = 0; stack.length && dirs < MAX_SWEEP_DIRS; dirs++) {
      const dir = stack.pop()!;
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      // a folder with its own state folder is another share (maybe another sync's): not ours
      if (dir !== this.root && entries.some((e) => e.name === STATE_DIR_NAME && e.isDirectory())) continue;
      for (const e of entries) {
        if (e.isDirectory() && !(dir === this.root && e.name === STATE_DIR_NAME)) stack.push(path.join(dir, e.name));
        else if (e.isFile() && isStaleSyncTemp(e.name)) await unlink(path.join(dir, e.name)).catch(() => {});
      }
    }
  }

  /** Write verified bytes to a new temp file beside the target, mtime (seconds) set. Not yet durable. */
  async stage(name: string, data: Buffer, manifest: Manifest, mtimeSec: number, before: () => Promise<void>): Promise<Staged> {
    // (readers.ts drops such names already: never a file in the state folder, nor one of ours)
    const problem = nameProblem(name) ?? notSharedName(name);
    if (problem) throw new SwarmError(ERROR_CODES.PATH_ESCAPE, `refused to write ${name}: ${problem}`);
    this.realRoot ||= await realpath(this.root);
    const dir = path.dirname(path.join(this.root, ...name.split('/')));
    await this.ensureDir(dir, this.newDirs);
    const tmp = path.join(dir, `${SYNC_TEMP_PREFIX}${process.pid}-${++this.n}`);
    const fh = await open(tmp, 'wx');
    try {
      if (data.length) await fh.write(data, 0, data.length, 0);
      await fh.utimes(mtimeSec, mtimeSec);
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return { name, manifest, tmp, fh, before };
  }

  /**
   * One durability barrier for a batch: every temp file's data flushed, then the renames (each
   * after its `before`), then every folder touched flushed once. A file that fails is reported and
   * its temp file removed; the others land.
   */
  async commit(batch: Staged[], onRename?: (l: Landed) => void): Promise<{ landed: Landed[]; failed: { name: string; err: Error }[] }> {
    this.realRoot ||= await realpath(this.root);
    const failed: { name: string; err: Error }[] = [];
    const ready: { s: Staged; st: FileStat }[] = [];
    await Promise.all(
      batch.map(async (s) => {
        try {
          await s.fh.datasync();
          const st = await s.fh.stat();
          ready.push({ s, st: { size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino } });
        } catch (err) {
          failed.push({ name: s.name, err: err as Error });
          await unlink(s.tmp).catch(() => {});
        } finally {
          await s.fh.close().catch(() => {});
        }
      }),
    );
    const landed: Landed[] = [];
    const touched = this.newDirs;
    this.newDirs = new Set();
    // every folder is checked again before its renames: one replaced by a symlink out of the
    // share since its files were staged is refused, not written through
    this.dirsOk.clear();
    for (const { s, st } of ready) {
      const final = path.join(this.root, ...s.name.split('/'));
      try {
        const dir = path.dirname(final);
        await this.ensureDir(dir, touched);
        await s.before();
        await rename(s.tmp, final);
        touched.add(dir);
        const l = { name: s.name, st, manifest: s.manifest };
        onRename?.(l);
        landed.push(l);
      } catch (err) {
        failed.push({ name: s.name, err: err as Error });
        await unlink(s.tmp).catch(() => {});
      }
    }
    await Promise.all([...touched].map((d) => syncDir(d)));
    return { landed, failed };
  }

  /** The folder of a file about to land: created if missing, and really inside the share (no symlink out). */
  private async ensureDir(dir: string, touched: Set<string>): Promise<void> {
    if (this.dirsOk.has(dir)) return;
    const first = await mkdir(dir, { recursive: true });
    if (first !== undefined) {
      // new folders (`first` the topmost): their entries in their parents must be durable too
      touched.add(path.dirname(first));
      for (let d = dir; d.length >= first.length; d = path.dirname(d)) touched.add(d);
    }
    const real = await realpath(dir);
    if (real !== this.realRoot && !isInside(this.realRoot, real)) throw new SwarmError(ERROR_CODES.PATH_ESCAPE, `${path.relative(this.root, dir)} leads outside the share`);
    this.dirsOk.add(dir);
  }

}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => null);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // some file systems refuse fsync on a folder: nothing more can be done for it
  } finally {
    await fh.close();
  }
}
