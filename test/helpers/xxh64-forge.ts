/**
 * A forger for xxhash64, as an attacker would write it: given a chunk, it builds other bytes with
 * the same xxhash64. This is why swarm must not check peers' chunks with xxhash64 (issue 9).
 *
 * xxhash64 of an input of 32 bytes or more runs four 64-bit accumulators over 32-byte stripes,
 * one 8-byte little-endian lane each: acc = rotl64(acc + lane * P2, 31) * P1. P1 and P2 are odd,
 * so the round can be run backwards: for any accumulator before a stripe and any wanted
 * accumulator after it there is exactly one lane, lane = (rotr64(want * P1⁻¹, 31) - acc) * P2⁻¹
 * (mod 2^64). The forger lets the attacker choose every byte before stripe `fix`, solves stripe
 * `fix` so the four accumulators equal the original's after it, and keeps the rest: everything
 * that follows (the tail, the length, the final mix) then sees the same state, hence the same
 * hash. Seed 0, as swarm used it. BigInt throughout: clear, and fast enough for tests.
 */

const MASK = (1n << 64n) - 1n;
export const P1 = 0x9e3779b185ebca87n;
export const P2 = 0xc2b2ae3d27d4eb4fn;
const STRIPE_BYTES = 32;

const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & MASK;
const rotr = (x: bigint, r: bigint) => ((x >> r) | (x << (64n - r))) & MASK;

/** Inverse of an odd number modulo 2^64 (Newton's iteration doubles the correct bits). */
export function inverse64(a: bigint): bigint {
  let x = a; // correct to 3 bits for odd a
  for (let i = 0; i < 6; i++) x = (x * (2n - ((a * x) & MASK))) & MASK;
  if (((a * x) & MASK) !== 1n) throw new Error('not invertible');
  return x;
}

const P1_INV = inverse64(P1);
const P2_INV = inverse64(P2);

function round(acc: bigint, lane: bigint): bigint {
  return (rotl((acc + lane * P2) & MASK, 31n) * P1) & MASK;
}

/** The lane that takes `acc` to `want` in one round. */
function solveLane(acc: bigint, want: bigint): bigint {
  return ((((rotr((want * P1_INV) & MASK, 31n) - acc) & MASK) * P2_INV) & MASK);
}

function initialAccumulators(seed = 0n): bigint[] {
  return [(seed + P1 + P2) & MASK, (seed + P2) & MASK, seed & MASK, (seed - P1) & MASK];
}

/** The four accumulators after the first `stripes` stripes of `bytes`. */
export function accumulatorsAfter(bytes: Uint8Array, stripes: number): bigint[] {
  const v = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const acc = initialAccumulators();
  for (let s = 0; s < stripes; s++) {
    for (let l = 0; l < 4; l++) acc[l] = round(acc[l]!, v.readBigUInt64LE(s * STRIPE_BYTES + l * 8));
  }
  return acc;
}

/**
 * Bytes with the same length and xxhash64 as `real`: `prefix` (repeated or cut to fill stripes
 * 0..fix-1), then one solved stripe, then `real` from stripe fix+1 on. `real` must hold at least
 * (fix + 1) stripes, so that the solved stripe is one the stripe loop hashes.
 */
export function forgeXxh64(real: Uint8Array, prefix: Uint8Array, fix = 1): Buffer {
  if (fix < 1 || real.length < (fix + 1) * STRIPE_BYTES) throw new Error('input too short to forge at that stripe');
  const out = Buffer.from(real);
  const free = fix * STRIPE_BYTES;
  for (let i = 0; i < free; i++) out[i] = prefix[i % prefix.length]!;
  const mine = accumulatorsAfter(out, fix);
  const want = accumulatorsAfter(real, fix + 1);
  for (let l = 0; l < 4; l++) out.writeBigUInt64LE(solveLane(mine[l]!, want[l]!), free + l * 8);
  return out;
}
