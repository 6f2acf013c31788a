/**
 * Codec benchmark: data-packet encode+decode throughput for several payload sizes, and the
 * checksum kernel against the byte loop it replaces. Pure CPU, one thread, no network.
 * Decoding copies each payload into a chunk buffer and verifies the checksum over the copy, as
 * the peer worker does; encoding builds the packet head and sums the payload, as the server does.
 * Decoded bytes are counted and every checksum must pass.
 *
 *   node dist/bench/codec.js [--mib 256] [--runs 5]
 */
import { FrameDecoder } from '../lib/protocol/frame.js';
import { copyAndVerify, encodePacketHead } from '../lib/protocol/packet.js';
import { sum16, sum16Bytewise } from '../lib/protocol/checksum.js';
import { arena } from '../lib/protocol/checksum-wasm.js';
import { median, spreadPct, table, fmt } from './lib/stats.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const TOTAL_MIB = arg('mib', 256);
const RUNS = arg('runs', 5);
const READ_BYTES = 64 << 10; // what a TCP socket hands us per 'data' event

function roundTrip(payloadBytes: number): number {
  const total = TOTAL_MIB << 20;
  const source = Buffer.alloc(payloadBytes, 0xa5);
  const wire: Buffer[] = [];
  const t0 = process.hrtime.bigint();
  const count = Math.ceil(total / payloadBytes);
  let wireBytes = 0;
  // Encode into a bounded window of socket-sized reads, decode, repeat (keeps memory flat).
  // As the peer worker does: copy each payload into a chunk buffer, checksum the copy.
  let received = 0;
  let bad = 0;
  const chunk = Buffer.allocUnsafe(Math.max(payloadBytes, 1 << 20));
  const decoder = new FrameDecoder({
    onMessage() {},
    onPacket(h, raw, pieces) {
      if (!copyAndVerify(h, raw, pieces, chunk, (h.offset % chunk.length) - ((h.offset % chunk.length) % payloadBytes))) bad++;
      received += h.length;
    },
  });
  for (let i = 0; i < count; i++) {
    const head = encodePacketHead({ flags: 0, requestId: 1, chunk: i, offset: i * payloadBytes }, source);
    wire.push(head, source);
    wireBytes += head.length + source.length;
    if (wireBytes >= 4 << 20 || i === count - 1) {
      const joined = Buffer.concat(wire);
      for (let at = 0; at < joined.length; at += READ_BYTES) decoder.push(joined.subarray(at, at + READ_BYTES));
      wire.length = 0;
      wireBytes = 0;
    }
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (received !== count * payloadBytes) throw new Error(`decoded ${received} bytes, expected ${count * payloadBytes}`);
  if (bad) throw new Error(`${bad} packets failed their checksum`);
  return received / 2 ** 20 / secs;
}

function checksumRate(fn: (b: Uint8Array) => number, buf: Buffer, reps: number): number {
  const t0 = process.hrtime.bigint();
  let x = 0;
  for (let i = 0; i < reps; i++) x ^= fn(buf);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (x < 0) throw new Error('unreachable');
  return (buf.length * reps) / 1e9 / secs;
}

const rows: (string | number)[][] = [];
for (const size of [16 << 10, 64 << 10, 1 << 20]) {
  roundTrip(size); // warm-up
  const r = Array.from({ length: RUNS }, () => roundTrip(size));
  rows.push([`packet round trip, ${size >> 10} KiB payload`, fmt(median(r)) + ' MB/s', `±${fmt(spreadPct(r))}%`, RUNS]);
}
const mib = Buffer.alloc(1 << 20);
for (let i = 0; i < mib.length; i++) mib[i] = (i * 31) & 0xff;
checksumRate(sum16, mib, 200);
const fast = Array.from({ length: RUNS }, () => checksumRate(sum16, mib, 500));
const slow = Array.from({ length: RUNS }, () => checksumRate(sum16Bytewise, mib, 50));
const simdArena = arena(1 << 20);
if (simdArena) {
  mib.copy(simdArena.bytes);
  const view = simdArena.bytes;
  const simd = Array.from({ length: RUNS }, () => checksumRate((b) => simdArena.sum16(b), view, 2000));
  rows.push(['checksum, wasm SIMD kernel (used), 1 MiB', fmt(median(simd), 2) + ' GB/s', `±${fmt(spreadPct(simd))}%`, RUNS]);
  rows.push(['SIMD / byte loop', fmt(median(simd) / median(slow), 2) + '×', '', '']);
}
rows.push(['checksum, JS word-wise kernel (fallback), 1 MiB', fmt(median(fast), 2) + ' GB/s', `±${fmt(spreadPct(fast))}%`, RUNS]);
rows.push(['checksum, byte loop (baseline), 1 MiB', fmt(median(slow), 2) + ' GB/s', `±${fmt(spreadPct(slow))}%`, RUNS]);
rows.push(['JS kernel / byte loop', fmt(median(fast) / median(slow), 2) + '×', '', '']);
console.log(`codec bench: ${TOTAL_MIB} MiB per run, decoder fed ${READ_BYTES >> 10} KiB reads, node ${process.version}`);
console.log(table(['case', 'median', 'spread', 'runs'], rows));
