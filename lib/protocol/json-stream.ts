/**
 * Splits a byte stream of back-to-back JSON objects (seed 002's tracker messages, which have no
 * framing) into parsed values. Tracks string and escape state so braces inside strings do not
 * count. Pure; throws SwarmError on a value over the size limit, bad JSON, or a non-object.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';

export class JsonObjectSplitter {
  /** Bytes of the object in progress that arrived in earlier pushes, copied (one buffer, grown
   * geometrically): a peer dribbling bytes costs us those bytes, not an object per read. */
  private pending: Buffer = Buffer.alloc(0);
  private pendingBytes = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** Bytes of the message in progress held here. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** True between messages. */
  get idle(): boolean {
    return this.depth === 0 && this.pendingBytes === 0;
  }

  constructor(private readonly onObject: (o: Record<string, unknown>) => void, private readonly maxBytes = 1 << 20) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.depth === 0) {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          start = i + 1;
          continue;
        }
        if (c !== 0x7b) throw new SwarmError(ERROR_CODES.BAD_JSON, `expected "{" between JSON messages, got byte 0x${c.toString(16)}`);
        start = i;
        this.depth = 1;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 0) {
          const tail = chunk.subarray(start, i + 1);
          const text = this.pendingBytes ? Buffer.concat([this.pending.subarray(0, this.pendingBytes), tail]).toString('utf8') : tail.toString('utf8');
          this.pendingBytes = 0;
          if (this.pending.length > 64 << 10) this.pending = Buffer.alloc(0);
          start = i + 1;
          this.emit(text);
        }
      }
    }
    if (this.depth > 0 && start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.pendingBytes + rest.length > this.maxBytes) throw new SwarmError(ERROR_CODES.FRAME_TOO_LARGE, `JSON message over ${this.maxBytes} bytes`);
      if (this.pending.length - this.pendingBytes < rest.length) {
        const grown = Buffer.allocUnsafe(Math.min(this.maxBytes, Math.max(4096, 2 * (this.pendingBytes + rest.length))));
        this.pending.copy(grown, 0, 0, this.pendingBytes);
        this.pending = grown;
      }
      rest.copy(this.pending, this.pendingBytes);
      this.pendingBytes += rest.length;
    }
  }

  private emit(text: string): void {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw new SwarmError(ERROR_CODES.BAD_JSON, `bad JSON message: ${(err as Error).message}`);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'JSON message is not an object');
    this.onObject(v as Record<string, unknown>);
  }
}
