import t from 'tap';
import { internetChecksum, sum16, sum16Bytewise, add16, complement16 } from '../lib/protocol/checksum.js';
import { arena, pieceSum } from '../lib/protocol/checksum-wasm.js';
import { prng, randomBytes } from './helpers/prng.js';

t.test('RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7', async (t) => {
  const bytes = Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  // The RFC's worked sum is 0xddf2 (after the end-around carry); the checksum is its complement.
  t.equal(sum16(bytes), 0xddf2);
  t.equal(internetChecksum(bytes), 0x220d);
});

t.test('a classic IPv4 header sums to 0xffff with its checksum in place', async (t) => {
  const hdr = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex');
  const c = internetChecksum(hdr);
  t.equal(c, 0xb861);
  hdr.writeUInt16BE(c, 10);
  t.equal(sum16(hdr), 0xffff);
});

t.test('fast kernel equals the byte loop at every alignment and length', async (t) => {
  const rand = prng(7);
  const backing = randomBytes(rand, 70_000);
  let checked = 0;
  for (const start of [0, 1, 2, 3, 4, 6]) {
    for (const len of [0, 1, 2, 3, 63, 64, 65, 127, 1000, 4097, 65_536]) {
      const view = backing.subarray(start, start + len);
      t.equal(sum16(view), sum16Bytewise(view), `start ${start} len ${len}`);
      checked++;
    }
  }
  // all-0xff data exercises the fold (sums near 2^53 would be wrong if folding were missing)
  const ones = Buffer.alloc(9 << 20, 0xff);
  t.equal(sum16(ones), sum16Bytewise(ones));
  t.ok(checked > 60);
});

t.test('partial sums of even-length pieces combine', async (t) => {
  const rand = prng(9);
  const a = randomBytes(rand, 1000);
  const b = randomBytes(rand, 777);
  t.equal(add16(sum16(a), sum16(b)), sum16(Buffer.concat([a, b])));
  t.equal(complement16(add16(sum16(a), sum16(b))), internetChecksum(Buffer.concat([a, b])));
});

const simdArena = arena(1 << 20);
t.test('the wasm SIMD kernel equals the byte loop at every alignment and length, and composes across pieces', {
  // An engine without wasm SIMD makes callers fall back to the JS kernel, which the tests above cover.
  skip: simdArena ? false : 'WebAssembly SIMD is not available in this Node.js',
}, async (t) => {
  const a = simdArena!;
  const rand = prng(99);
  randomBytes(rand, 300_000).copy(a.bytes);
  let checked = 0;
  for (const start of [0, 1, 2, 3, 5, 16, 17]) {
    for (const len of [0, 1, 2, 15, 16, 17, 33, 4097, 65_535, 65_536, 65_537, 200_001]) {
      const view = a.bytes.subarray(start, start + len);
      t.equal(a.sum16(view), sum16Bytewise(view), `start ${start} len ${len}`);
      checked++;
    }
  }
  a.bytes.fill(0xff);
  t.equal(a.sum16(a.bytes), sum16Bytewise(a.bytes), 'all-ones megabyte (lane overflow guard)');
  t.notOk(a.owns(Buffer.alloc(4)), 'ownership is by memory');
  // a message split at odd and even points: pieces summed where they lie, then combined
  const msg = a.bytes.subarray(1000, 1000 + 9999);
  randomBytes(rand, msg.length).copy(msg);
  for (const cut of [1, 2, 777, 4096, 9998]) {
    const whole = sum16Bytewise(msg);
    const parts = add16(pieceSum(a.sum16(msg.subarray(0, cut)), 0), pieceSum(a.sum16(msg.subarray(cut)), cut));
    t.equal(parts, whole, `split at ${cut}`);
  }
  t.ok(checked > 80);
});
