/**
 * Codec benchmark: data packets encoded as the server encodes them and decoded as the downloader
 * decodes them, on fresh random bytes, for 16 KiB, 64 KiB (what swarm sends) and 1 MiB payloads;
 * then the packet checksum kernels. Pure CPU, one thread, no network. The same calls as the real
 * path, and where the kernel would copy, one copy:
 *
 *   encode, as lib/peer/session.ts: file bytes copied into a 1 MiB read buffer in wasm memory
 *     (pread's copy); per packet, the payload summed where it lies, encodePacketHead, then head
 *     and payload appended to the wire (the kernel's copy at writev; no Buffer.concat).
 *   decode, as lib/net/framed-client.ts + lib/download/peer-fetcher.ts: the wire copied 256 KiB at
 *     a time into one reused read buffer in wasm memory (the kernel's copy at read), pushed into a
 *     FrameDecoder (reuseInput); each payload piece copied into its chunk buffer and summed where
 *     it lies; the checksum checked at the packet's end.
 *
 * Checks: every packet's checksum passes, every byte arrives, and the received bytes equal the
 * source; "bytes ok" counts runs that passed (exit 1 when one did not).
 *
 *   node dist/bench/codec.js [--mib 256] [--runs 5]
 */
import { randomFillSync } from 'node:crypto';
import { FrameDecoder } from '../lib/protocol/frame.js';
import { encodePacketHead, packetChecksumOk, FLAG_LAST_IN_CHUNK } from '../lib/protocol/packet.js';
import { add16, sum16, sum16Bytewise } from '../lib/protocol/checksum.js';
import { arena, pieceSum } from '../lib/protocol/checksum-wasm.js';
import { READ_BUFFER_BYTES } from '../lib/net/framed-client.js';
import { MIN_CHUNK_BYTES, PACKET_PAYLOAD_BYTES } from '../lib/constants.js';
import { fmt, mbps, median, spreadPct, table, UNITS, MiB } from './lib/stats.js';
import { Checks } from './lib/files.js';
import { isMain, num, parseOptions } from './lib/options.js';
import { runMain } from './lib/procs.js';

const USAGE = 'node dist/bench/codec.js [options]: packet encode and decode, checksum kernels (CPU only)';
const OPTIONS = {
  mib: num(256, 'MiB of payload per run'),
  runs: num(5, 'counted runs per case, after one warm-up'),
};

/** The server's file read buffer (lib/peer/session.ts READ_BYTES). */
const SERVER_READ_BYTES = 1 << 20;
const CHUNK_BYTES = MIN_CHUNK_BYTES;

interface Case {
  payloadBytes: number;
  encodeS: number[];
  decodeS: number[];
  checks: Checks;
}

/** One run: encode all of `file` into `wire`, decode the wire into `out`; seconds of each. */
function roundTrip(file: Buffer, wire: Buffer, out: Buffer, payloadBytes: number): { encodeS: number; decodeS: number; ok: boolean } {
  const total = file.length;
  // ---- server
  const serverArena = arena(SERVER_READ_BYTES);
  const readSlot = serverArena?.bytes ?? Buffer.allocUnsafeSlow(SERVER_READ_BYTES);
  let w = 0;
  const t0 = process.hrtime.bigint();
  for (let piece = 0; piece < total; piece += SERVER_READ_BYTES) {
    const n = file.copy(readSlot, 0, piece, Math.min(total, piece + SERVER_READ_BYTES));
    for (let at = 0; at < n; at += payloadBytes) {
      const payload = readSlot.subarray(at, Math.min(n, at + payloadBytes));
      const offset = piece + at;
      const payloadSum = serverArena?.owns(payload) ? serverArena.sum16(payload) : sum16(payload);
      const last = (offset + payload.length) % CHUNK_BYTES === 0 || offset + payload.length === total;
      const head = encodePacketHead({ flags: last ? FLAG_LAST_IN_CHUNK : 0, requestId: 1, chunk: Math.floor(offset / CHUNK_BYTES), offset }, payload, payloadSum);
      w += head.copy(wire, w);
      w += payload.copy(wire, w);
    }
  }
  const t1 = process.hrtime.bigint();

  // ---- client
  const readArena = arena(READ_BUFFER_BYTES);
  const readBuf = readArena?.bytes ?? Buffer.allocUnsafe(READ_BUFFER_BYTES);
  let received = 0;
  let bad = 0;
  let headerSum = 0;
  let sum = 0;
  const decoder = new FrameDecoder(
    {
      onMessage() {},
      onPacketStart(_h, hs) {
        headerSum = hs;
        sum = 0;
      },
      onPacketData(h, piece, at) {
        out.set(piece, h.offset + at);
        const partial = readArena?.owns(piece) ? readArena.sum16(piece) : sum16(piece);
        sum = add16(sum, pieceSum(partial, at));
      },
      onPacketEnd(h) {
        if (!packetChecksumOk(h, headerSum, sum)) bad++;
        received += h.length;
      },
    },
    { reuseInput: true },
  );
  const t2 = process.hrtime.bigint();
  for (let at = 0; at < w; at += READ_BUFFER_BYTES) {
    const n = wire.copy(readBuf, 0, at, Math.min(w, at + READ_BUFFER_BYTES));
    decoder.push(readBuf.subarray(0, n));
  }
  const t3 = process.hrtime.bigint();
  const ok = bad === 0 && received === total && out.equals(file);
  if (!ok) process.stderr.write(`codec: ${payloadBytes >> 10} KiB payloads: ${bad} bad checksums, ${received} of ${total} bytes, content ${out.equals(file) ? 'equal' : 'differs'}\n`);
  return { encodeS: Number(t1 - t0) / 1e9, decodeS: Number(t3 - t2) / 1e9, ok };
}

function checksumRate(fn: (b: Uint8Array) => number, buf: Uint8Array, reps: number): number {
  let x = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) x ^= fn(buf);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (x < 0) throw new Error('unreachable');
  return mbps(buf.length * reps, secs);
}

export interface CodecResult {
  cases: Case[];
  kernels: { name: string; rates: number[] }[];
  failures: number;
  text: string;
}

export function codec(o: { mib: number; runs: number }, signal?: AbortSignal): CodecResult {
  const total = Math.max(1, Math.round(o.mib)) * MiB;
  const runs = Math.max(1, o.runs);
  const file = randomFillSync(Buffer.allocUnsafe(total));
  const out = Buffer.alloc(total); // touched, as pooled chunk buffers are
  const cases: Case[] = [];
  for (const payloadBytes of [16 << 10, PACKET_PAYLOAD_BYTES, 1 << 20]) {
    if (signal?.aborted) break;
    const wire = Buffer.allocUnsafe(Math.ceil(total / payloadBytes) * 64 + total);
    const c: Case = { payloadBytes, encodeS: [], decodeS: [], checks: new Checks() };
    for (let r = 0; r <= runs; r++) {
      out.fill(0);
      const rt = roundTrip(file, wire, out, payloadBytes);
      c.checks.add(rt.ok);
      if (r === 0) continue; // warm-up
      c.encodeS.push(rt.encodeS);
      c.decodeS.push(rt.decodeS);
    }
    cases.push(c);
  }
  // the checksum kernels over one random MiB
  const oneMiB = randomFillSync(Buffer.allocUnsafe(MiB));
  const kernels: { name: string; rates: number[] }[] = [];
  const simd = arena(MiB);
  if (simd) {
    oneMiB.copy(simd.bytes);
    checksumRate((b) => simd.sum16(b), simd.bytes, 200);
    kernels.push({ name: 'wasm SIMD (used)', rates: Array.from({ length: runs }, () => checksumRate((b) => simd.sum16(b), simd.bytes, 2000)) });
  }
  checksumRate(sum16, oneMiB, 100);
  kernels.push({ name: 'JS word-wise (fallback without SIMD)', rates: Array.from({ length: runs }, () => checksumRate(sum16, oneMiB, 500)) });
  kernels.push({ name: 'byte loop (baseline)', rates: Array.from({ length: runs }, () => checksumRate(sum16Bytewise, oneMiB, 50)) });

  const rows = cases.map((c) => {
    const rt = c.encodeS.map((e, i) => mbps(total, e + c.decodeS[i]!));
    return [
      `${c.payloadBytes >> 10} KiB${c.payloadBytes === PACKET_PAYLOAD_BYTES ? ' (used)' : ''}`,
      fmt(median(c.encodeS.map((s) => mbps(total, s))), 0),
      fmt(median(c.decodeS.map((s) => mbps(total, s))), 0),
      fmt(median(rt), 0),
      `±${fmt(spreadPct(rt))}%`,
      c.checks.toString(),
    ];
  });
  const base = median(kernels.at(-1)!.rates);
  const kRows = kernels.map((k) => [k.name, fmt(median(k.rates), 0), `±${fmt(spreadPct(k.rates))}%`, fmt(median(k.rates) / base, 2) + '×']);
  const text = [
    `Packet codec: ${o.mib} MiB of random payload per run, medians of ${runs} runs after a warm-up, one thread; ${UNITS}`,
    table(['payload', 'encode MB/s', 'decode MB/s', 'round trip MB/s', 'spread', 'bytes ok'], rows),
    `encode: pread copy, checksum, header, writev copy (server); decode: read copy into the 256 KiB buffer, decoder, copy into the chunk, checksum (client); bytes ok counts the warm-up too`,
    '',
    `Packet checksum kernels over 1 MiB of random bytes, medians of ${runs}; ${UNITS}`,
    table(['kernel', 'MB/s', 'spread', '× byte loop'], kRows),
  ].join('\n');
  return { cases, kernels, failures: cases.reduce((a, c) => a + c.checks.failed, 0), text };
}

if (isMain(import.meta.url)) {
  const o = parseOptions(USAGE, OPTIONS);
  runMain('codec', async ({ signal }) => {
    const r = codec(o, signal);
    console.log(r.text);
    if (r.failures) console.log(`FAILED: ${r.failures} run(s) did not deliver the source's bytes`);
    return r.failures ? 1 : 0;
  });
}
