/**
 * Splits a byte stream of back-to-back JSON objects (seed 002's tracker messages, which have no
 * framing) into parsed values. Tracks string and escape state so braces inside strings do not
 * count. Pure; throws SwarmError on a value over the size limit, bad JSON, or a non-object.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';

export class JsonObjectSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

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
          this.pending.push(chunk.subarray(start, i + 1));
          const text = Buffer.concat(this.pending).toString('utf8');
          this.pending = [];
          this.pendingBytes = 0;
          start = i + 1;
          this.emit(text);
        }
      }
    }
    if (this.depth > 0 && start < chunk.length) {
      const rest = chunk.subarray(start);
      this.pending.push(rest);
      this.pendingBytes += rest.length;
      if (this.pendingBytes > this.maxBytes) throw new SwarmError(ERROR_CODES.FRAME_TOO_LARGE, `JSON message over ${this.maxBytes} bytes`);
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
