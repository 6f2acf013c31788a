/**
 * A WebAssembly SIMD kernel for the packet checksum, and "arenas": buffers that live in the
 * kernel's memory so data read into them (file reads, socket reads) is summed where it lies,
 * with no copy. The module is assembled here from its bytes (annotated below); it exports
 * `sum(ptr, len) -> i64`, the sum of little-endian 16-bit words of memory[ptr, ptr+len) (an odd
 * last byte counts as a low byte), folded like the JS kernel in checksum.ts.
 *
 * Per 16-byte block, i32x4.extadd_pairwise_i16x8_u adds word pairs into four 32-bit lanes; lanes
 * are flushed into a 64-bit total every 64 KiB so they cannot overflow. v128.load accepts any
 * alignment, so views at odd offsets need no slow path. If this engine lacks SIMD, `arena()`
 * returns null and callers keep the JS kernel.
 */
import { fold, swap16 } from './checksum.js';

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
const str = (s: string) => [s.length, ...Buffer.from(s)];

// locals: 0 p, 1 n (then: overall end), 2 acc v128, 3 s i64, 4 blockEnd i32, 5 end i32
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const tee = (i: number) => [0x22, i];
const i32c = (v: number) => [0x41, ...sleb(v)];
const SIMD = 0xfd;
const lane = (k: number) => [...get(2), SIMD, 0x1b, k, 0xad /* i64.extend_i32_u */, 0x7c /* i64.add */];

const code = [
  // end = p + (n & ~15)
  ...get(0), ...get(1), ...i32c(-16), 0x71, 0x6a, ...set(5),
  0x02, 0x40, // block $done
  0x03, 0x40, //   loop $outer
  ...get(0), ...get(5), 0x4f, 0x0d, 1, //   p >= end: br_if $done
  // blockEnd = (p + 65536 < end) ? p + 65536 : end
  ...get(0), ...i32c(65536), 0x6a, ...tee(4), ...get(5), ...get(4), ...get(5), 0x49, 0x1b, ...set(4),
  SIMD, 0x0c, ...new Array(16).fill(0), ...set(2), // acc = 0
  0x03, 0x40, //     loop $inner
  ...get(2), ...get(0), SIMD, 0x00, 0x00, 0x00, // v128.load align=0 offset=0
  SIMD, 0x7f, // i32x4.extadd_pairwise_i16x8_u
  SIMD, 0xae, 0x01, // i32x4.add
  ...set(2),
  ...get(0), ...i32c(16), 0x6a, ...tee(0), ...get(4), 0x49, 0x0d, 0, // p += 16; p < blockEnd: br_if $inner
  0x0b, //     end $inner
  ...get(3), ...lane(0), ...lane(1), ...lane(2), ...lane(3), ...set(3), // s += lanes
  0x0c, 0, //   br $outer
  0x0b, //   end $outer
  0x0b, // end $done
  // n := end + (n & 15): the overall end
  ...get(5), ...get(1), ...i32c(15), 0x71, 0x6a, ...set(1),
  0x02, 0x40, 0x03, 0x40, // block $t, loop $tl
  ...get(0), ...i32c(2), 0x6a, ...get(1), 0x4b, 0x0d, 1, // p + 2 > end: br_if $t
  ...get(3), ...get(0), 0x33, 0x00, 0x00, 0x7c, ...set(3), // s += i64.load16_u(p)
  ...get(0), ...i32c(2), 0x6a, ...set(0),
  0x0c, 0, // br $tl
  0x0b, 0x0b,
  ...get(0), ...get(1), 0x49, 0x04, 0x40, // if p < end
  ...get(3), ...get(0), 0x31, 0x00, 0x00, 0x7c, ...set(3), // s += i64.load8_u(p)
  0x0b,
  ...get(3),
  0x0b, // end func
];
const body = [0x03, 0x01, 0x7b, 0x01, 0x7e, 0x02, 0x7f, ...code];

const MODULE_BYTES = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7e]), // type: (i32, i32) -> i64
  ...section(2, [0x01, ...str('env'), ...str('mem'), 0x02, 0x00, 0x01]), // import memory, min 1 page
  ...section(3, [0x01, 0x00]),
  ...section(7, [0x01, ...str('sum'), 0x00, 0x00]),
  ...section(10, [0x01, ...leb(body.length), ...body]),
]);

let compiled: WebAssembly.Module | null | undefined;

function module(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(MODULE_BYTES);
    } catch {
      compiled = null; // no SIMD here
    }
  }
  return compiled;
}

const PAGE = 65536;


/** A fixed block of wasm memory with a fast checksum over any part of it. */
export interface ChecksumArena {
  /** The whole arena as a Buffer (its memory never grows, so views stay valid). */
  readonly bytes: Buffer;
  /** One's-complement partial sum (as checksum.ts's sum16) of `view`, which must lie inside `bytes`. */
  sum16(view: Uint8Array): number;
  /** True when `view` lies inside this arena. */
  owns(view: Uint8Array): boolean;
}

export function arena(byteLength: number): ChecksumArena | null {
  const mod = module();
  if (!mod) return null;
  const pages = Math.ceil(byteLength / PAGE);
  let mem: WebAssembly.Memory;
  let inst: WebAssembly.Instance;
  try {
    // each memory reserves ~10 GiB of address space: a process holds ~13,000 at most (RangeError
    // past that); then the caller's plain buffer and the JS kernel, never an exception
    mem = new WebAssembly.Memory({ initial: pages, maximum: pages });
    inst = new WebAssembly.Instance(mod, { env: { mem } });
  } catch {
    return null;
  }
  const sum = inst.exports.sum as (p: number, n: number) => bigint;
  const bytes = Buffer.from(mem.buffer, 0, byteLength);
  return {
    bytes,
    owns: (v) => v.buffer === mem.buffer,
    sum16(view: Uint8Array): number {
      const le = fold(Number(sum(view.byteOffset, view.length)));
      return swap16(le);
    },
  };
}

/** Sum of a piece that starts `at` bytes into the checksummed message (odd `at` swaps bytes). */
export function pieceSum(partial: number, at: number): number {
  return at & 1 ? swap16(partial) : partial;
}

