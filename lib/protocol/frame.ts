/**
 * Frames: seed 000's wire format, and a streaming decoder that survives any TCP split.
 *
 *   u32 BE  JSON header length  (0 means: the body is a data packet, see packet.ts)
 *   u32 BE  body length
 *   JSON header (UTF-8 object with a string field `t`, the message type)
 *   body (binary, may be empty)
 *
 * The decoder keeps a list of received buffers and works as "need N bytes, then the next step";
 * it copies only when the piece it needs straddles two reads, and hands packet payloads over as
 * slices of the received buffers (never joined). Declared lengths are checked against limits
 * before anything is allocated. It is pure: bytes in, callbacks out; errors are thrown as
 * SwarmError and the caller closes the connection.
 *
 * Streaming mode (a handler with `onPacketStart`): payload bytes are handed over as they arrive,
 * so the receiver copies them straight to their destination and the decoder never holds on to
 * payload memory. With `reuseInput`, whatever is left unconsumed after a push is copied (a few
 * header bytes, or a partial control frame), so the caller may read into one buffer again and
 * again.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';
import { FRAME_PREFIX_BYTES, MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_PACKET_PAYLOAD_BYTES } from '../constants.js';
import { decodePacketHeader, packetHeaderSum, PACKET_HEADER_BYTES, type PacketHeader } from './packet.js';

export { FRAME_PREFIX_BYTES };

export type Header = { t: string; [k: string]: unknown };

/** Encode a control frame. Returns [prefix+header] and the body separately, for writev. */
export function encodeFrame(header: Header, body?: Uint8Array): Buffer[] {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length === 0 || json.length > MAX_HEADER_BYTES) {
    throw new SwarmError(ERROR_CODES.FRAME_TOO_LARGE, `frame header of ${json.length} bytes exceeds ${MAX_HEADER_BYTES}`);
  }
  const bodyLength = body ? body.length : 0;
  if (bodyLength > MAX_BODY_BYTES) throw new SwarmError(ERROR_CODES.FRAME_TOO_LARGE, `frame body of ${bodyLength} bytes exceeds ${MAX_BODY_BYTES}`);
  const head = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + json.length);
  head.writeUInt32BE(json.length, 0);
  head.writeUInt32BE(bodyLength, 4);
  json.copy(head, FRAME_PREFIX_BYTES);
  return body && bodyLength > 0 ? [head, Buffer.from(body.buffer, body.byteOffset, body.byteLength)] : [head];
}

/** One frame as a single buffer (tests, tools). */
export function encodeFrameBuffer(header: Header, body?: Uint8Array): Buffer {
  return Buffer.concat(encodeFrame(header, body));
}

export interface FrameHandler {
  /** A control message: parsed JSON header and its body (empty buffer when none). */
  onMessage(header: Header, body: Buffer): void;
  /**
   * A data packet: its parsed header, the raw 28 header bytes (for the checksum), and the
   * payload as slices of received buffers, in order, summing to header.length bytes.
   */
  onPacket?(header: PacketHeader, headerBytes: Buffer, payload: Buffer[]): void;
  /** Streaming mode: a packet begins; `headerSum` is the partial checksum of its header. */
  onPacketStart?(header: PacketHeader, headerSum: number): void;
  /** Streaming mode: `piece` holds payload bytes [at, at + piece.length); valid only during the call. */
  onPacketData?(header: PacketHeader, piece: Buffer, at: number): void;
  /** Streaming mode: the packet's payload is complete. */
  onPacketEnd?(header: PacketHeader): void;
}

export interface DecoderLimits {
  maxHeaderBytes?: number;
  maxBodyBytes?: number;
  /** Copy unconsumed bytes at the end of each push, so the caller may reuse its buffer. */
  reuseInput?: boolean;
}

const enum Step {
  Prefix,
  Header,
  Body,
  PacketHeader,
  PacketPayload,
}

export class FrameDecoder {
  private readonly queue: Buffer[] = [];
  private queueHead = 0;
  private headOffset = 0;
  private available = 0;
  private step: Step = Step.Prefix;
  private headerLength = 0;
  private bodyLength = 0;
  private header: Header | null = null;
  private packet: PacketHeader | null = null;
  private packetHeaderBytes: Buffer | null = null;
  private readonly maxHeader: number;
  private readonly maxBody: number;
  private readonly streaming: boolean;
  private readonly reuseInput: boolean;
  /** Streaming mode: payload bytes of the current packet already handed over. */
  private payloadDone = 0;
  private broken: SwarmError | null = null;

  constructor(private readonly handler: FrameHandler, limits: DecoderLimits = {}) {
    this.maxHeader = limits.maxHeaderBytes ?? MAX_HEADER_BYTES;
    this.maxBody = limits.maxBodyBytes ?? MAX_BODY_BYTES;
    this.streaming = typeof handler.onPacketStart === 'function';
    this.reuseInput = limits.reuseInput === true;
    if (this.reuseInput && !this.streaming) throw new SwarmError(ERROR_CODES.INTERNAL, 'reuseInput needs a streaming handler');
  }

  /** Bytes received but not yet consumed by a complete frame. */
  get buffered(): number {
    return this.available;
  }

  /** True between frames: a connection closing now loses nothing. */
  get idle(): boolean {
    return this.step === Step.Prefix && this.available === 0;
  }

  private paused = false;

  /**
   * Stop handing out frames (the receiver's replies are backing up); bytes already pushed stay
   * queued, so the caller should stop reading too. `resume` hands out what is queued.
   */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.broken) return;
    try {
      this.drain();
    } catch (err) {
      this.broken = err instanceof SwarmError ? err : new SwarmError(ERROR_CODES.BAD_FRAME, String(err));
      throw this.broken;
    }
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Feed bytes. Calls the handler for every complete frame; throws SwarmError on bad input. */
  push(chunk: Buffer): void {
    if (this.broken) throw this.broken;
    if (chunk.length === 0) return;
    let tailBefore = -1;
    // Small reads are copied into a growable buffer we own instead of being queued one by one:
    // a peer dribbling a frame a byte at a time must cost us its bytes, not an object per read.
    if (!this.reuseInput && chunk.length < SMALL_READ_BYTES) this.appendOwned(chunk, 0);
    else {
      tailBefore = this.tailEnd;
      this.queue.push(chunk);
      this.tailEnd = -1;
    }
    this.available += chunk.length;
    try {
      this.drain();
      if (this.reuseInput) this.keepLeftover(chunk, tailBefore);
    } catch (err) {
      this.broken = err instanceof SwarmError ? err : new SwarmError(ERROR_CODES.BAD_FRAME, String(err));
      throw this.broken;
    }
  }

  // The owned tail: while tailEnd >= 0 the queue's last entry is tail[tailStart, tailEnd), and
  // appending extends that view. Bytes already handed out are never overwritten (only bytes past
  // tailEnd are written). A new tail's capacity is at most twice what is buffered and takes over
  // the old tail's bytes, so a connection holds at most about twice the bytes it actually sent,
  // whatever the size of its reads.
  private tail: Buffer | null = null;
  private tailStart = 0;
  private tailEnd = -1;

  private appendOwned(src: Buffer, from: number): void {
    const n = src.length - from;
    const last = this.queue.length - 1;
    if (this.tail && this.tailEnd >= 0 && last >= this.queueHead && this.tail.length - this.tailEnd >= n) {
      src.copy(this.tail, this.tailEnd, from);
      this.tailEnd += n;
      this.queue[last] = this.tail.subarray(this.tailStart, this.tailEnd);
      return;
    }
    const capacity = Math.min(Math.max(MIN_TAIL_BYTES, 2 * (this.available + n)), MAX_TAIL_BYTES);
    // The old tail's unconsumed bytes move into the new one when they fit, so a connection holds
    // one tail, not a trail of ever larger ones (measured: 2.9 → 1.0-2.0 bytes held per byte
    // dribbled). Geometric growth keeps the copying to about one extra copy of each byte.
    const owned = this.tail && this.tailEnd >= 0 && last >= this.queueHead ? this.queue[last]!.subarray(last === this.queueHead ? this.headOffset : 0) : null;
    const carry = owned && owned.length + n <= capacity ? owned : null;
    const size = (carry ? carry.length : 0) + n;
    this.tail = Buffer.allocUnsafe(Math.max(size, capacity));
    if (carry) carry.copy(this.tail, 0);
    src.copy(this.tail, size - n, from);
    this.tailStart = 0;
    this.tailEnd = size;
    if (carry) {
      this.queue[last] = this.tail.subarray(0, size);
      if (last === this.queueHead) this.headOffset = 0;
    } else this.queue.push(this.tail.subarray(0, n));
  }

  /**
   * Own what is left of `chunk` (the caller is about to reuse its buffer). Only the caller's
   * chunk, the last queue entry, can still be a view of that buffer; earlier bytes are owned.
   */
  private keepLeftover(chunk: Buffer, tailBefore: number): void {
    const last = this.queue.length - 1;
    if (this.available === 0 || last < this.queueHead || this.queue[last] !== chunk) return;
    const from = last === this.queueHead ? this.headOffset : 0;
    this.queue.pop();
    if (last === this.queueHead) {
      this.headOffset = 0;
      if (this.queue.length === this.queueHead) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
    }
    const n = chunk.length - from;
    this.available -= n;
    this.tailEnd = this.queue.length > this.queueHead ? tailBefore : -1;
    this.appendOwned(chunk, from);
    this.available += n;
  }

  /** Call at end of stream: throws TRUNCATED if a frame was cut short. */
  end(): void {
    if (!this.broken && !this.idle) {
      throw new SwarmError(ERROR_CODES.TRUNCATED, `stream ended inside a frame (${this.available} bytes pending)`);
    }
  }

  private drain(): void {
    for (;;) {
      if (this.paused) return;
      switch (this.step) {
        case Step.Prefix: {
          if (this.available < FRAME_PREFIX_BYTES) return;
          const p = this.take(FRAME_PREFIX_BYTES);
          this.headerLength = p.readUInt32BE(0);
          this.bodyLength = p.readUInt32BE(4);
          if (this.headerLength === 0) {
            if (this.bodyLength < PACKET_HEADER_BYTES) throw new SwarmError(ERROR_CODES.BAD_PACKET, `data frame of ${this.bodyLength} bytes is shorter than a packet header`);
            if (this.bodyLength > PACKET_HEADER_BYTES + MAX_PACKET_PAYLOAD_BYTES) {
              throw new SwarmError(ERROR_CODES.FRAME_TOO_LARGE, `data frame declares ${this.bodyLength} bytes`, { declared: this.bodyLength });
            }
            this.step = Step.PacketHeader;
          } else {
            if (this.headerLength > this.maxHeader) {
              throw new SwarmError(ERROR_CODES.FRAME_TOO_LARGE, `frame header declares ${this.headerLength} bytes (limit ${this.maxHeader})`, { declared: this.headerLength });
            }
            if (this.bodyLength > this.maxBody) {
              throw new SwarmError(ERROR_CODES.FRAME_TOO_LARGE, `frame body declares ${this.bodyLength} bytes (limit ${this.maxBody})`, { declared: this.bodyLength });
            }
            this.step = Step.Header;
          }
          break;
        }
        case Step.Header: {
          if (this.available < this.headerLength) return;
          this.header = parseHeader(this.take(this.headerLength));
          this.step = Step.Body;
          break;
        }
        case Step.Body: {
          if (this.available < this.bodyLength) return;
          let body = this.bodyLength === 0 ? EMPTY : this.take(this.bodyLength);
          if (this.reuseInput && body.length > 0) body = Buffer.from(body); // outlives the caller's buffer
          const header = this.header!;
          this.header = null;
          this.step = Step.Prefix;
          this.handler.onMessage(header, body);
          break;
        }
        case Step.PacketHeader: {
          if (this.available < PACKET_HEADER_BYTES) return;
          const raw = this.take(PACKET_HEADER_BYTES);
          const h = decodePacketHeader(raw);
          if (h.length !== this.bodyLength - PACKET_HEADER_BYTES) {
            throw new SwarmError(ERROR_CODES.BAD_PACKET, `packet declares ${h.length} payload bytes but its frame holds ${this.bodyLength - PACKET_HEADER_BYTES}`);
          }
          this.packet = h;
          this.step = Step.PacketPayload;
          if (this.streaming) {
            this.payloadDone = 0;
            this.handler.onPacketStart!(h, packetHeaderSum(raw));
          } else this.packetHeaderBytes = raw;
          break;
        }
        case Step.PacketPayload: {
          const h = this.packet!;
          if (this.streaming) {
            while (this.payloadDone < h.length && this.available > 0) {
              const first = this.queue[this.queueHead]!;
              const n = Math.min(h.length - this.payloadDone, first.length - this.headOffset);
              const piece = first.subarray(this.headOffset, this.headOffset + n);
              this.advance(n);
              this.handler.onPacketData!(h, piece, this.payloadDone);
              this.payloadDone += n;
            }
            if (this.payloadDone < h.length) return;
            this.packet = null;
            this.step = Step.Prefix;
            this.handler.onPacketEnd!(h);
            break;
          }
          if (this.available < h.length) return;
          const pieces = this.takePieces(h.length);
          const raw = this.packetHeaderBytes!;
          this.packet = null;
          this.packetHeaderBytes = null;
          this.step = Step.Prefix;
          if (!this.handler.onPacket) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'unexpected data packet');
          this.handler.onPacket(h, raw, pieces);
          break;
        }
      }
    }
  }

  /** Remove n bytes (n <= available) as one buffer: a slice when possible, else a copy. */
  private take(n: number): Buffer {
    const first = this.queue[this.queueHead]!;
    const left = first.length - this.headOffset;
    if (left >= n) {
      const out = first.subarray(this.headOffset, this.headOffset + n);
      this.advance(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    for (const piece of this.takePieces(n)) {
      piece.copy(out, filled);
      filled += piece.length;
    }
    return out;
  }

  /** Remove n bytes (n <= available) as slices of the received buffers. */
  private takePieces(n: number): Buffer[] {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const buf = this.queue[this.queueHead]!;
      const left = buf.length - this.headOffset;
      const k = Math.min(left, need);
      out.push(buf.subarray(this.headOffset, this.headOffset + k));
      need -= k;
      this.advance(k);
    }
    return out;
  }

  private advance(n: number): void {
    this.available -= n;
    this.headOffset += n;
    const buf = this.queue[this.queueHead]!;
    if (this.headOffset === buf.length) {
      this.queue[this.queueHead] = EMPTY;
      this.queueHead++;
      this.headOffset = 0;
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
        // between frames, keep no more than a small tail: a connection that once dribbled a big
        // frame must not hold twice its size while idle (views already handed out keep theirs)
        this.tailEnd = -1;
        if (this.tail && this.tail.length > MIN_TAIL_BYTES) this.tail = null;
      } else if (this.queueHead > 64) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
    }
  }
}

const EMPTY = Buffer.alloc(0);
/** Reads shorter than this are copied into the owned tail rather than queued. */
const SMALL_READ_BYTES = 16 << 10;
const MIN_TAIL_BYTES = 4 << 10;
/** A tail grows geometrically up to this; past it, a new tail starts (a long frame of small reads). */
const MAX_TAIL_BYTES = 4 << 20;

function parseHeader(bytes: Buffer): Header {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new SwarmError(ERROR_CODES.BAD_JSON, `frame header is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'frame header is not a JSON object');
  }
  const t = (value as { t?: unknown }).t;
  if (typeof t !== 'string' || t.length === 0 || t.length > 64) {
    throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'frame header has no message type "t"');
  }
  return value as Header;
}
