/**
 * Data packets: the binary record that carries chunk bytes (seed 004's packet with a chunk
 * number and a UDP-style checksum, grown to 64-bit offsets).
 *
 * A packet travels as the body of a frame whose JSON-header length is 0 (see frame.ts and
 * README.md in this folder). Layout of the 28-byte packet header, big-endian:
 *
 *   0  u16 magic 0x5350 ('SP')   2 u8 version (1)   3 u8 flags (bit 0: last packet of its chunk)
 *   4  u32 request id            8 u32 chunk index
 *  12  u64 file offset of the first payload byte (as hi u32, lo u32)
 *  20  u32 payload length       24 u16 checksum     26 u16 reserved, 0
 *
 * The checksum is RFC 1071's over the 28 header bytes (checksum field as 0) and the payload.
 * Encoding returns the frame prefix and packet header as one small buffer; the payload is written
 * after it unchanged (writev), never copied to prepend a header.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';
import { FRAME_PREFIX_BYTES, MAX_PACKET_PAYLOAD_BYTES, PACKET_PAYLOAD_BYTES } from '../constants.js';
import { add16, complement16, sum16 } from './checksum.js';


export const PACKET_MAGIC = 0x5350;
export const PACKET_VERSION = 1;
export const PACKET_HEADER_BYTES = 28;
export const FLAG_LAST_IN_CHUNK = 1;

export interface PacketHeader {
  flags: number;
  requestId: number;
  chunk: number;
  offset: number;
  length: number;
  checksum: number;
}

const TWO_32 = 0x1_0000_0000;

function writeHeader(buf: Buffer, at: number, h: Omit<PacketHeader, 'checksum'>, checksum: number): void {
  buf.writeUInt16BE(PACKET_MAGIC, at);
  buf[at + 2] = PACKET_VERSION;
  buf[at + 3] = h.flags;
  buf.writeUInt32BE(h.requestId >>> 0, at + 4);
  buf.writeUInt32BE(h.chunk >>> 0, at + 8);
  buf.writeUInt32BE(Math.floor(h.offset / TWO_32), at + 12);
  buf.writeUInt32BE(h.offset % TWO_32, at + 16);
  buf.writeUInt32BE(h.length, at + 20);
  buf.writeUInt16BE(checksum, at + 24);
  buf.writeUInt16BE(0, at + 26);
}

/** Frame prefix and packet header together: what precedes every payload on the wire. */
export const PACKET_HEAD_BYTES = FRAME_PREFIX_BYTES + PACKET_HEADER_BYTES;

/**
 * Frame prefix + packet header for `payload`, checksum filled in. Send it, then the payload.
 * `payloadSum` may be passed when the caller already summed the payload.
 */
export function encodePacketHead(
  h: { flags: number; requestId: number; chunk: number; offset: number },
  payload: Uint8Array,
  payloadSum: number = sum16(payload),
): Buffer {
  const head = Buffer.allocUnsafe(PACKET_HEAD_BYTES);
  writePacketHeadAt(head, 0, h, payload.length, payloadSum);
  return head;
}

/**
 * Write a data packet's frame prefix and header (PACKET_HEAD_BYTES) into `buf` at `at`, for a
 * payload of `length` bytes whose RFC 1071 sum is `payloadSum`. Senders that read payloads into
 * one buffer with a gap before each write the heads into the gaps and send the buffer whole.
 */
export function writePacketHeadAt(
  buf: Buffer,
  at: number,
  h: { flags: number; requestId: number; chunk: number; offset: number },
  length: number,
  payloadSum: number,
): void {
  if (length > MAX_PACKET_PAYLOAD_BYTES) {
    throw new SwarmError(ERROR_CODES.BAD_PACKET, `packet payload ${length} bytes exceeds ${MAX_PACKET_PAYLOAD_BYTES}`);
  }
  if (!Number.isSafeInteger(h.offset) || h.offset < 0) throw new SwarmError(ERROR_CODES.BAD_PACKET, `bad packet offset ${h.offset}`);
  buf.writeUInt32BE(0, at);
  buf.writeUInt32BE(PACKET_HEADER_BYTES + length, at + 4);
  const at2 = at + FRAME_PREFIX_BYTES;
  writeHeader(buf, at2, { flags: h.flags, requestId: h.requestId, chunk: h.chunk, offset: h.offset, length }, 0);
  const headerSum = sum16(buf.subarray(at2, at2 + PACKET_HEADER_BYTES));
  buf.writeUInt16BE(complement16(add16(headerSum, payloadSum)), at2 + 24);
}

/**
 * The heads of the packets that carry a piece (`length` payload bytes from file offset `offset`
 * of chunk `chunk`, a packet per PACKET_PAYLOAD_BYTES), written into `buf` one every `stride`
 * bytes: `stride` PACKET_HEAD_BYTES puts them side by side (a sender whose payloads go out
 * otherwise), PACKET_HEAD_BYTES + PACKET_PAYLOAD_BYTES leaves each payload's room after its head.
 * Packet k's payload of n bytes sums to `sumOf(k, n)`; the piece's last packet is flagged last in
 * its chunk when `last`. Returns where the last packet's payload ends in a buffer laid out so.
 */
export function writePieceHeads(
  buf: Buffer,
  stride: number,
  piece: { requestId: number; chunk: number; offset: number; length: number; last: boolean },
  sumOf: (k: number, n: number) => number,
): number {
  let end = 0;
  for (let at = 0, k = 0; at < piece.length; at += PACKET_PAYLOAD_BYTES, k++) {
    const n = Math.min(PACKET_PAYLOAD_BYTES, piece.length - at);
    const flags = at + n >= piece.length && piece.last ? FLAG_LAST_IN_CHUNK : 0;
    writePacketHeadAt(buf, k * stride, { flags, requestId: piece.requestId, chunk: piece.chunk, offset: piece.offset + at }, n, sumOf(k, n));
    end = k * stride + PACKET_HEAD_BYTES + n;
  }
  return end;
}

/** Whole packet (header + payload) as one buffer: for tests and tools, not the hot path. */
export function encodePacket(h: { flags: number; requestId: number; chunk: number; offset: number }, payload: Uint8Array): Buffer {
  const head = encodePacketHead(h, payload);
  return Buffer.concat([head, payload]);
}

/** Parse and sanity-check a packet header (28 bytes). Throws BAD_PACKET. */
export function decodePacketHeader(b: Buffer): PacketHeader {
  if (b.length < PACKET_HEADER_BYTES) throw new SwarmError(ERROR_CODES.BAD_PACKET, 'packet shorter than its header');
  if (b.readUInt16BE(0) !== PACKET_MAGIC) throw new SwarmError(ERROR_CODES.BAD_PACKET, 'bad packet magic');
  if (b[2] !== PACKET_VERSION) throw new SwarmError(ERROR_CODES.BAD_PACKET, `unsupported packet version ${b[2]}`);
  const hi = b.readUInt32BE(12);
  if (hi >= 1 << 21) throw new SwarmError(ERROR_CODES.BAD_PACKET, 'packet offset beyond 2^53');
  const length = b.readUInt32BE(20);
  if (length > MAX_PACKET_PAYLOAD_BYTES) throw new SwarmError(ERROR_CODES.FRAME_TOO_LARGE, `packet declares ${length} payload bytes`);
  return {
    flags: b[3]!,
    requestId: b.readUInt32BE(4),
    chunk: b.readUInt32BE(8),
    offset: hi * TWO_32 + b.readUInt32BE(16),
    length,
    checksum: b.readUInt16BE(24),
  };
}

/** Partial sum of the 28 header bytes with the checksum field taken as zero. */
export function packetHeaderSum(headerBytes: Buffer): number {
  return add16(sum16(headerBytes.subarray(0, 24)), sum16(headerBytes.subarray(26, PACKET_HEADER_BYTES)));
}

/** True when header sum + payload sum match the packet's checksum field. */
export function packetChecksumOk(h: PacketHeader, headerSum: number, payloadSum: number): boolean {
  return complement16(add16(headerSum, payloadSum)) === h.checksum;
}
