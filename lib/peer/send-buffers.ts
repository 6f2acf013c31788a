/**
 * The read buffers of the serving data path (sender.ts), shared by every connection of this
 * thread: a buffer is taken for one piece (a read, then its write) and given back when the socket
 * has taken that write, so a connection holds buffers only while it has a piece in flight.
 *
 * Before, each connection made its own 4 MiB of wasm memory on its first `get` and let it go with
 * the connection: a client that connects, asks for one small file and closes, in a loop (or a
 * sync receiver that reconnects), cost the server a WebAssembly.Memory, an Instance and a share of
 * a full garbage collection each time (measured: ~45% of the server's CPU went to GC, ~2.4 ms a
 * connection). Buffers come in arenas (checksum-wasm.ts) of ARENA_SLOTS, so their payloads are
 * summed where they were read; at most KEEP_FREE wait here unused, the rest are dropped (an arena
 * goes with its last buffer), so an idle server holds a few MiB at most.
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

/** Buffers per wasm memory: one Memory and one Instance made for four pieces. */
export const ARENA_SLOTS = 4;
/** Unused buffers kept for the next piece; beyond these, a returned buffer is dropped. */
export const KEEP_FREE = 8;

export class SendBufferPool {
  private readonly free: SendBuffer[] = [];
  private readonly lent = new WeakSet<SendBuffer>();
  /** Arenas (or plain buffers) made so far: tests and the hostile suite read it. */
  made = 0;

  constructor(
    readonly bufferBytes: number,
    private readonly keepFree = KEEP_FREE,
  ) {}

  take(): SendBuffer {
    let b = this.free.pop();
    if (!b) {
      this.made++;
      const a = arena(ARENA_SLOTS * this.bufferBytes);
      if (a) {
        for (let i = ARENA_SLOTS - 1; i >= 1; i--) this.free.push({ bytes: a.bytes.subarray(i * this.bufferBytes, (i + 1) * this.bufferBytes), arena: a });
        b = { bytes: a.bytes.subarray(0, this.bufferBytes), arena: a };
      } else {
        b = { bytes: Buffer.allocUnsafeSlow(this.bufferBytes), arena: null };
      }
    }
    this.lent.add(b);
    return b;
  }

  /** Give `b` back; false (and nothing done) when it was not lent: given back twice. */
  give(b: SendBuffer): boolean {
    if (!this.lent.delete(b)) return false;
    if (this.free.length < this.keepFree) this.free.push(b);
    return true;
  }

  /** Buffers waiting here unused. */
  get idle(): number {
    return this.free.length;
  }
}
