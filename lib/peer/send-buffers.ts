/**
 * The read buffers of the serving data path (sender.ts), shared by every connection of this
 * thread: a buffer is taken for one piece (a read, then its write) and given back when the socket
 * has taken that write, so a connection holds buffers only while it has a piece in flight.
 *
 * Before, each connection made its own 4 MiB of wasm memory on its first `get` and let it go with
 * the connection: a client that connects, asks for one small file and closes, in a loop (or a
 * sync receiver that reconnects), cost the server a WebAssembly.Memory, an Instance and a share of
 * a full garbage collection each time (measured: ~45% of the server's CPU went to GC, ~2.4 ms a
 * connection). Each buffer is its own arena (checksum-wasm.ts), so its payloads are summed where
 * they were read, and a buffer kept idle pins only itself: at most KEEP_FREE of each size wait
 * here unused (an idle server holds ~11 MiB of them at most), the rest are dropped. Buffers cut
 * from shared arenas were tried: one kept buffer then kept its whole arena (4 MiB) resident
 * (hostile review). Pooled, a memory is made rarely, so one per buffer costs nothing measurable;
 * a process holds ~13,000 of them (256 connections x 4 pieces in flight use 1,024).
 *
 * A buffer must be given back only once nothing will touch it again: after the socket's write
 * callback (the kernel took the bytes, or the write was cancelled) or after its read finished and
 * it was not sent. A buffer given back twice would be handed to two connections: `give` ignores
 * the second (and says false).
 */
import { arena, type ChecksumArena } from '../protocol/checksum-wasm.js';

export interface SendBuffer {
  readonly bytes: Buffer;
  /** The arena that holds `bytes` (sums payloads where they lie), or null: a plain buffer. */
  readonly arena: ChecksumArena | null;
}

/** Unused buffers kept for the next piece; beyond these, a returned buffer is dropped. */
export const KEEP_FREE = 8;

export class SendBufferPool {
  /** Buffer sizes, smallest first, and the unused buffers of each size. */
  readonly sizes: number[];
  private readonly free: SendBuffer[][];
  private readonly lent = new WeakSet<SendBuffer>();
  /** Buffers made so far (each its own wasm memory, or a plain buffer): tests read it. */
  made = 0;

  /**
   * `sizes`: one size, or several: a piece takes the smallest buffer it fits. A buffer that went
   * back is resident whole (the last piece read into it may have filled it), so a small piece in a
   * large one pinned that much: a client that never reads holds its pieces, and with 1 MiB
   * buffers 60 KB files and 256 KiB warm-up pieces cost serve ~1.1 MiB per such client instead of
   * ~0.4 (200 non-readers amid fast readers: +210 vs +77 MiB of RSS; hostile review).
   */
  constructor(
    sizes: number | number[],
    private readonly keepFree = KEEP_FREE,
  ) {
    this.sizes = (typeof sizes === 'number' ? [sizes] : [...sizes]).sort((a, b) => a - b);
    this.free = this.sizes.map(() => []);
  }

  /** The largest size (the default piece). */
  get bufferBytes(): number {
    return this.sizes[this.sizes.length - 1]!;
  }

  /** A buffer of at least `bytes` (at most the largest size). */
  take(bytes = this.bufferBytes): SendBuffer {
    let k = this.sizes.findIndex((n) => n >= bytes);
    if (k < 0) k = this.sizes.length - 1;
    const size = this.sizes[k]!;
    const free = this.free[k]!;
    let b = free.pop();
    if (!b) {
      this.made++;
      const a = arena(size);
      b = { bytes: a ? a.bytes.subarray(0, size) : Buffer.allocUnsafeSlow(size), arena: a };
    }
    this.lent.add(b);
    return b;
  }

  /** Give `b` back; false (and nothing done) when it was not lent: given back twice. */
  give(b: SendBuffer): boolean {
    if (!this.lent.delete(b)) return false;
    const free = this.free[this.sizes.indexOf(b.bytes.length)];
    if (free && free.length < this.keepFree) free.push(b);
    return true;
  }

  /** Buffers waiting here unused. */
  get idle(): number {
    let n = 0;
    for (const f of this.free) n += f.length;
    return n;
  }
}
