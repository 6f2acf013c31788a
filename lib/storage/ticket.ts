/**
 * The ticket (seed 000): resume state of one download, kept beside the part file as
 * `NAME.swarm-ticket`. It names the content (cid, size, chunk size) and holds a bitfield of
 * verified chunks, with an xxhash64 of itself so a damaged ticket is not trusted (local state:
 * no adversary reaches it, so the fast non-cryptographic hash is the right tool).
 *
 * The file holds two slots of equal, fixed size, each a complete copy with a sequence number; a
 * save overwrites the older slot in place (one small synchronous positional write on a descriptor
 * kept open, so no save waits behind other work on libuv's threadpool), so a
 * crash in the middle of a save spoils at most that slot, and loading takes the valid slot with
 * the higher number. (Writing a temp file and renaming it at every save cost an open, a close and
 * a rename 20 times a second: a quarter of a slow download's CPU in profiles.) The file is created
 * whole, atomically, by the first save. Saves are coalesced: at most one every SAVE_INTERVAL_MS,
 * and while one runs further marks wait for the next. A crash therefore loses at most the chunks
 * verified in the last 50 ms.
 * A save still waiting its turn is dropped by `flush` (which writes the same bits at once) and by
 * `remove` (the download is complete), so finishing never waits out the interval.
 * A save that fails (folder removed, disk full) is kept as `error` (a SwarmError) for the download
 * to stop on; it never becomes an unhandled rejection.
 */
import { fstatSync, writeSync } from 'node:fs';
import { open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';
import { loadLocalChecksum } from '../hashing.js';
import { ioError } from './fs-steps.js';
import type { SwarmError } from '../errors.js';

export const SAVE_INTERVAL_MS = 50;
const VERSION = 3;
/** Digits of a slot's sequence number (zero-padded, so every slot has the same length). */
const SEQ_DIGITS = 12;

export interface TicketMeta {
  name: string;
  cid: string;
  size: number;
  chunkBytes: number;
  mtime: number;
}

export interface TicketData extends TicketMeta {
  version: 3;
  /** Which save this is (slots with a higher one are newer). */
  seq: string;
  /** Base64 bitfield, bit i (LSB first within a byte) set when chunk i is verified. */
  verified: string;
}

export type TicketLoad = { ticket: TicketData } | { ticket: null; why: 'missing' | 'old-format' | 'damaged' };

export class Ticket {
  private readonly bits: Uint8Array;
  /** Set bits in `bits`, once counted (-1: not yet). */
  private counted = -1;
  private saving: Promise<void> | null = null;
  private dirty = false;
  private lastSave = 0;
  /** Removed (the download finished): no save may write the file again. */
  private closed = false;
  /** Ends the wait of a save waiting its turn. */
  private wake: (() => void) | null = null;
  /** The first save that failed; the download stops on it. */
  error: SwarmError | null = null;
  private onError: ((e: SwarmError) => void) | null = null;

  constructor(readonly file: string, readonly meta: TicketMeta, chunks: number, bits?: Uint8Array) {
    this.bits = bits ?? new Uint8Array(Math.ceil(chunks / 8));
  }

  static async load(file: string): Promise<TicketLoad> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return { ticket: null, why: 'missing' };
    }
    if (text.startsWith('{"version":1')) return { ticket: null, why: 'old-format' };
    const sum = await loadLocalChecksum();
    const half = text.length >> 1;
    let best: TicketData | null = null;
    let oldFormat = false;
    for (const slot of text.length % 2 === 0 ? [text.slice(0, half), text.slice(half)] : [text]) {
      const body = slot.trimEnd();
      const nl = body.indexOf('\n');
      if (nl !== 16 || sum(body.slice(nl + 1)) !== body.slice(0, nl)) continue;
      try {
        const t = JSON.parse(body.slice(nl + 1)) as TicketData;
        if (t.version !== VERSION || typeof t.cid !== 'string' || typeof t.verified !== 'string' || typeof t.seq !== 'string') {
          oldFormat = true;
          continue;
        }
        if (!best || t.seq > best.seq) best = t;
      } catch {
        // a slot spoiled by a torn write: the other one holds
      }
    }
    if (best) return { ticket: best };
    return { ticket: null, why: oldFormat ? 'old-format' : 'damaged' };
  }

  static fromData(file: string, d: TicketData, chunks: number): Ticket {
    const bits = new Uint8Array(Math.ceil(chunks / 8));
    bits.set(Buffer.from(d.verified, 'base64').subarray(0, bits.length));
    const { version: _v, verified: _b, seq, ...meta } = d;
    const t = new Ticket(file, meta, chunks, bits);
    t.seq = Number(seq);
    return t;
  }

  /** Be told of the first failed save (the download stops on it). */
  failWith(fn: (e: SwarmError) => void): void {
    this.onError = fn;
    if (this.error) fn(this.error);
  }

  has(i: number): boolean {
    return (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /**
   * Chunks verified. Counted once, then kept by `mark` (a partial holder asks "complete?" for
   * every request it serves: a popcount of 8 KiB per request at 65,536 chunks).
   */
  count(): number {
    if (this.counted < 0) {
      let n = 0;
      for (const b of this.bits) for (let x = b; x; x &= x - 1) n++;
      this.counted = n;
    }
    return this.counted;
  }

  /** The first chunk in [from, to) not verified, or -1; whole bytes of verified chunks are skipped at once. */
  firstMissing(from: number, to: number): number {
    for (let i = from; i < to; ) {
      if ((i & 7) === 0 && i + 8 <= to && this.bits[i >> 3] === 0xff) {
        i += 8;
        continue;
      }
      if (!this.has(i)) return i;
      i++;
    }
    return -1;
  }

  /** The bitfield itself (read-only view for peers asking what we have). */
  bitfield(): Uint8Array {
    return this.bits;
  }

  /** Mark chunk i verified and schedule a save. */
  mark(i: number): void {
    if (this.counted >= 0 && !this.has(i)) this.counted++;
    this.bits[i >> 3]! |= 1 << (i & 7);
    this.dirty = true;
    if (!this.saving && !this.error && !this.closed) this.saving = this.saveLoop();
  }

  /** The number of the last save, and the descriptor saves write through (once the file exists). */
  private seq = 0;
  private fh: FileHandle | null = null;
  private slotBytes = 0;

  /** One slot: checksum line, JSON, a newline; padded with spaces to the slot size. */
  private async slot(seq: number): Promise<Buffer> {
    const data: TicketData = { version: VERSION, seq: String(seq).padStart(SEQ_DIGITS, '0'), ...this.meta, verified: Buffer.from(this.bits).toString('base64') };
    const json = JSON.stringify(data);
    const text = Buffer.from(`${(await loadLocalChecksum())(json)}\n${json}\n`);
    if (!this.slotBytes) this.slotBytes = text.length;
    if (text.length !== this.slotBytes) throw new Error(`ticket slot grew from ${this.slotBytes} to ${text.length} bytes`);
    return text;
  }

  /** Write the next save: the first creates the file (both slots), later ones overwrite the older slot. */
  private async write(durable: boolean): Promise<void> {
    const seq = ++this.seq;
    const slot = await this.slot(seq);
    if (!this.fh) {
      await writeFileAtomic(this.file, Buffer.concat([slot, slot]), durable);
      this.fh = await open(this.file, 'r+');
      return;
    }
    // a ticket whose file was removed (the output folder with it) cannot resume anything, and the
    // download cannot be renamed into place: stop now, as a save that fails
    // Synchronous on purpose: a slot is ~100 bytes (microseconds), and a save queued on libuv's
    // threadpool behind other work was seen to lag the verified chunks by a second under load
    if (fstatSync(this.fh.fd).nlink === 0) throw Object.assign(new Error(`${this.file} was removed`), { code: 'ENOENT' });
    let done = 0;
    while (done < slot.length) done += writeSync(this.fh.fd, slot, done, slot.length - done, (seq % 2) * slot.length + done);
    if (durable) await this.fh.datasync();
  }

  private async saveLoop(): Promise<void> {
    try {
      while (this.dirty && !this.closed) {
        const wait = this.lastSave + SAVE_INTERVAL_MS - Date.now();
        if (wait > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, wait);
            this.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.wake = null;
          if (!this.dirty || this.closed) break; // flushed or removed meanwhile
        }
        this.dirty = false;
        this.lastSave = Date.now();
        await this.write(false);
      }
    } catch (err) {
      this.error ??= ioError(err, `cannot save the ticket ${this.file}`);
      this.onError?.(this.error);
    } finally {
      this.saving = null;
    }
  }

  /** Wait for pending saves, then write once more with fsync. Throws a SwarmError on failure. */
  async flush(): Promise<void> {
    // a save waiting its turn would write what this writes now: drop it
    this.dirty = false;
    this.wake?.();
    while (this.saving) await this.saving;
    try {
      await this.write(true);
    } catch (err) {
      throw ioError(err, `cannot save the ticket ${this.file}`);
    }
  }

  /** Close the descriptor saves write through (the download ended; the file stays for resuming). */
  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => {});
  }

  async remove(): Promise<void> {
    this.closed = true;
    this.wake?.();
    while (this.saving) await this.saving;
    await this.close();
    await unlink(this.file).catch(() => {});
  }
}
