/**
 * Codec benchmark: data-packet encode+decode throughput for several payload sizes, and the
 * checksum kernel against the byte loop it replaces. Pure CPU, one thread, no network.
 * Round trips use the same path as swarm (see roundTrip); decoded bytes are counted and every
 * checksum must pass.
 *
 *   node dist/bench/codec.js [--mib 256] [--runs 5]
 */
import { FrameDecoder } from '../lib/protocol/frame.js';
import { encodePacketHead, packetChecksumOk } from '../lib/protocol/packet.js';
import { add16, sum16, sum16Bytewise } from '../lib/protocol/checksum.js';
import { arena, pieceSum } from '../lib/protocol/checksum-wasm.js';
import { median, spreadPct, table, fmt } from './lib/stats.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const TOTAL_MIB = arg('mib', 256);
const RUNS = arg('runs', 5);
const READ_BYTES = 256 << 10; // the peer client's reused read buffer

/**
 * Encode packets as the server does (head + checksum of the payload) and decode them as the peer
 * worker does: socket-sized reads land in one reused read buffer (a wasm arena when SIMD is
 * there), the streaming decoder hands payload pieces over, each piece is summed where it lies and
 * copied into a chunk buffer, and the checksum is checked at the packet's end.
 */
function roundTrip(payloadBytes: number): number {
  const total = TOTAL_MIB << 20;
  // the server reads file data into a wasm arena and sums it there; so does this bench
  const sourceArena = arena(payloadBytes);
  const source = sourceArena ? sourceArena.bytes.fill(0xa5) : Buffer.alloc(payloadBytes, 0xa5);
  const readArena = arena(READ_BYTES);
  const readBuf = readArena?.bytes ?? Buffer.allocUnsafe(READ_BYTES);
  const sumOf = (b: Uint8Array) => (readArena?.owns(b) ? readArena.sum16(b) : sourceArena?.owns(b) ? sourceArena.sum16(b) : sum16(b));
  const chunk = Buffer.allocUnsafe(Math.max(payloadBytes, 1 << 20));
  const count = Math.ceil(total / payloadBytes);
  let received = 0;
  let bad = 0;
  let headerSum = 0;
  let sum = 0;
  let base = 0;
  const decoder = new FrameDecoder(
    {
      onMessage() {},
      onPacketStart(h, hs) {
        headerSum = hs;
        sum = 0;
        base = (h.offset % chunk.length) - ((h.offset % chunk.length) % payloadBytes);
      },
      onPacketData(_h, piece, at) {
        chunk.set(piece, base + at);
        sum = add16(sum, pieceSum(sumOf(piece), at));
      },
      onPacketEnd(h) {
        if (!packetChecksumOk(h, headerSum, sum)) bad++;
        received += h.length;
      },
    },
    { reuseInput: true },
  );
  const wire: Buffer[] = [];
  let wireBytes = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const head = encodePacketHead({ flags: 0, requestId: 1, chunk: i, offset: i * payloadBytes }, source, sumOf(source));
    wire.push(head, source);
    wireBytes += head.length + source.length;
    if (wireBytes >= 4 << 20 || i === count - 1) {
      const joined = Buffer.concat(wire);
      for (let at = 0; at < joined.length; at += READ_BYTES) {
        const n = joined.copy(readBuf, 0, at, at + READ_BYTES); // stands in for the kernel's copy into the read buffer
        decoder.push(readBuf.subarray(0, n));
      }
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
