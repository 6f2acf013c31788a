/**
 * The ticket (seed 000): resume state of one download, kept beside the part file as
 * `NAME.swarm-ticket`. It names the content (cid, size, chunk size) and holds a bitfield of
 * verified chunks, with an xxhash64 of itself so a damaged ticket is not trusted (local state:
 * no adversary reaches it, so the fast non-cryptographic hash is the right tool). Saves are atomic
 * (temp + rename) and coalesced: at most one every SAVE_INTERVAL_MS, and while one runs further
 * marks wait for the next. A crash therefore loses at most the chunks verified in the last 50 ms.
 * A save still waiting its turn is dropped by `flush` (which writes the same bits at once) and by
 * `remove` (the download is complete), so finishing never waits out the interval.
 * A save that fails (folder removed, disk full) is kept as `error` (a SwarmError) for the download
 * to stop on; it never becomes an unhandled rejection.
 */
import { readFile, unlink } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';
import { loadLocalChecksum } from '../hashing.js';
import { ioError } from './fs-steps.js';
import type { SwarmError } from '../errors.js';

export const SAVE_INTERVAL_MS = 50;
const VERSION = 2;

export interface TicketMeta {
  name: string;
  cid: string;
  size: number;
  chunkBytes: number;
  mtime: number;
}

export interface TicketData extends TicketMeta {
  version: 2;
  /** Base64 bitfield, bit i (LSB first within a byte) set when chunk i is verified. */
  verified: string;
}

export type TicketLoad = { ticket: TicketData } | { ticket: null; why: 'missing' | 'old-format' | 'damaged' };

export class Ticket {
  private readonly bits: Uint8Array;
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
    try {
      const nl = text.indexOf('\n');
      const sum = await loadLocalChecksum();
      if (nl !== 16 || sum(text.slice(nl + 1)) !== text.slice(0, nl)) return { ticket: null, why: text.startsWith('{"version":1') ? 'old-format' : 'damaged' };
      const t = JSON.parse(text.slice(nl + 1)) as TicketData;
      if (t.version !== VERSION || typeof t.cid !== 'string' || typeof t.verified !== 'string') return { ticket: null, why: 'old-format' };
      return { ticket: t };
    } catch {
      return { ticket: null, why: 'damaged' };
    }
  }

  static fromData(file: string, d: TicketData, chunks: number): Ticket {
    const bits = new Uint8Array(Math.ceil(chunks / 8));
    bits.set(Buffer.from(d.verified, 'base64').subarray(0, bits.length));
    const { version: _v, verified: _b, ...meta } = d;
    return new Ticket(file, meta, chunks, bits);
  }

  /** Be told of the first failed save (the download stops on it). */
  failWith(fn: (e: SwarmError) => void): void {
    this.onError = fn;
    if (this.error) fn(this.error);
  }

  has(i: number): boolean {
    return (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  count(): number {
    let n = 0;
    for (const b of this.bits) for (let x = b; x; x &= x - 1) n++;
    return n;
  }

  /** The bitfield itself (read-only view for peers asking what we have). */
  bitfield(): Uint8Array {
    return this.bits;
  }

  /** Mark chunk i verified and schedule a save. */
  mark(i: number): void {
    this.bits[i >> 3]! |= 1 << (i & 7);
    this.dirty = true;
    if (!this.saving && !this.error && !this.closed) this.saving = this.saveLoop();
  }

  private async text(): Promise<string> {
    const data: TicketData = { version: VERSION, ...this.meta, verified: Buffer.from(this.bits).toString('base64') };
    const json = JSON.stringify(data);
    return `${(await loadLocalChecksum())(json)}\n${json}`;
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
        await writeFileAtomic(this.file, await this.text(), false);
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
      await writeFileAtomic(this.file, await this.text(), true);
    } catch (err) {
      throw ioError(err, `cannot save the ticket ${this.file}`);
    }
  }

  async remove(): Promise<void> {
    this.closed = true;
    this.wake?.();
    while (this.saving) await this.saving;
    await unlink(this.file).catch(() => {});
  }
}
