/**
 * The UDP-style checksum of data packets: the 16-bit one's-complement sum of RFC 1071, over
 * big-endian 16-bit words, the last odd byte padded with zero.
 *
 * The kernel reads 32-bit little-endian words through a Uint32Array and adds them into a double
 * (exact below 2^53, so we fold every 2^20 words). Because 65536 ≡ 1 (mod 65535), the sum of
 * 32-bit words equals the sum of their 16-bit halves in one's-complement arithmetic, and the
 * little-endian result is the big-endian one byte-swapped (RFC 1071 §2(B)). This runs several
 * times faster than a byte loop (see bench/codec). Views that do not start on a 4-byte boundary
 * take a slower path; packet payloads in swarm always do.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const FOLD_EVERY_WORDS = 1 << 20;

/** Fold a sum below 2^53 to 16 bits with end-around carries. */
export function fold(sum: number): number {
  // sum < 2^53: fold in steps that stay exact in doubles.
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** Swap the two bytes of a 16-bit value (a sum taken from an odd offset, or little-endian). */
export function swap16(x: number): number {
  return ((x & 0xff) << 8) | (x >>> 8);
}

/** Plain byte-pair loop: the reference, and the path for odd-aligned views. */
export function sum16Bytewise(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  const n = bytes.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    sum += (bytes[i]! << 8) | bytes[i + 1]!;
    if ((i & 0xffffe) === 0) sum = fold(sum);
  }
  if (i < n) sum += bytes[i]! << 8;
  return fold(sum);
}

/**
 * One's-complement sum (not yet complemented) of `bytes`, treated as starting on an even byte of
 * the checksummed message. Partial sums of consecutive even-length pieces combine with `add16`.
 */
export function sum16(bytes: Uint8Array, initial = 0): number {
  const n = bytes.length;
  const misalign = bytes.byteOffset & 3;
  if (!LITTLE_ENDIAN || (misalign & 1) === 1 || n < 64) return sum16Bytewise(bytes, initial);

  let sum = 0; // little-endian word sum
  let start = 0;
  if (misalign === 2) {
    sum += bytes[0]! | (bytes[1]! << 8);
    start = 2;
  }
  const words = (n - start) >>> 2;
  const u32 = new Uint32Array(bytes.buffer, bytes.byteOffset + start, words);
  let i = 0;
  while (i < words) {
    const end = Math.min(words, i + FOLD_EVERY_WORDS);
    let a = 0;
    let b = 0;
    for (; i + 3 < end; i += 4) {
      a += u32[i]! + u32[i + 1]!;
      b += u32[i + 2]! + u32[i + 3]!;
    }
    for (; i < end; i++) a += u32[i]!;
    sum = fold(sum + a + b);
  }
  let tail = start + (words << 2);
  for (; tail + 1 < n; tail += 2) sum += bytes[tail]! | (bytes[tail + 1]! << 8);
  if (tail < n) sum += bytes[tail]!;
  return add16(initial, swap16(fold(sum)));
}

/** Add two partial sums in one's-complement arithmetic. */
export function add16(a: number, b: number): number {
  return fold(a + b);
}

/** The checksum field value for a message whose partial sum is `sum`. */
export function complement16(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** RFC 1071 Internet checksum of one contiguous message. */
export function internetChecksum(bytes: Uint8Array): number {
  return complement16(sum16(bytes));
}
