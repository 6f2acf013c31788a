/**
 * The kernel path of serving (kernel-send.ts, the native helper's sendfile): what the receiver gets
 * is byte for byte what the copying path sends (every packet checksummed with the sums taken at
 * hashing, the last-in-chunk flags, the payloads); nothing of the file passes through our reads;
 * frames written while a piece waits on a full socket land between pieces, never inside one; a
 * file that shrinks ends the request with FILE_CHANGED; a connection closed while the kernel
 * waits ends the send and leaves no descriptor behind; and a whole `serve` + `get` goes this way.
 */
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { closeSync, ftruncateSync, openSync, readdirSync, readv, read, fstatSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { RangeSender, type SenderHooks } from '../lib/peer/sender.js';
import type { ChunkSource, SourceReader } from '../lib/peer/source.js';
import type { Manifest } from '../lib/manifest.js';
import { sum16 } from '../lib/protocol/checksum.js';
import { encodeFrame } from '../lib/protocol/frame.js';
import { PACKET_PAYLOAD_BYTES } from '../lib/constants.js';
import { ERROR_CODES, SwarmError } from '../lib/errors.js';
import { kernelSend, setKernelSend } from '../lib/native/sendfile.js';
import { kernelStats } from '../lib/peer/kernel-send.js';
import { TokenBucket } from '../lib/scheduling/token-bucket.js';
import { serve } from '../lib/serve.js';
import { get } from '../lib/download/get.js';
import { InlineChunkPool } from '../lib/pool.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { parseWire, socketPair } from './helpers/wire.js';

const MiB = 1 << 20;

// the helper is built by `npm run build` where a C compiler and Node's headers are (every CI
// machine of this project); without it swarm serves by copying, which the sender tests cover
const skip = kernelSend() ? false : 'the native sendfile helper is not built here (no compiler at install, or not Linux)';
t.test('the kernel path', { skip }, async (t) => run(t));

/** A file on disk with its bytes, manifest and packet sums; a reader that counts its reads and lends its descriptor. */
function fileFixture(t: Test, size: number, seed: number) {
  const dir = tempDir(t);
  const file = path.join(dir, 'big.bin');
  const data = randomBytes(prng(seed), size);
  writeFileSync(file, data);
  const m: Manifest = { cid: 'cd'.repeat(32), size, chunkBytes: MiB, hashes: Buffer.alloc(0) };
  const per = MiB / PACKET_PAYLOAD_BYTES;
  const sums = new Uint16Array(Math.ceil(size / MiB) * per);
  for (let c = 0; c * MiB < size; c++) {
    for (let k = 0; k < per && c * MiB + k * PACKET_PAYLOAD_BYTES < size; k++) {
      const at = c * MiB + k * PACKET_PAYLOAD_BYTES;
      sums[c * per + k] = sum16(data.subarray(at, Math.min(size, at + PACKET_PAYLOAD_BYTES, (c + 1) * MiB)));
    }
  }
  const fd = openSync(file, 'r');
  t.teardown(() => {
    try {
      closeSync(fd);
    } catch {
      // closed by the test
    }
  });
  const counts = { reads: 0, lent: 0 };
  const reader = (o: { checkSize: boolean }): SourceReader => ({
    read(buf, at, length, position) {
      counts.reads++;
      return new Promise((res, rej) => read(fd, buf, at, length, position, (e, n) => (e ? rej(e) : res(n))));
    },
    readv(bufs, position) {
      counts.reads++;
      return new Promise((res, rej) => readv(fd, bufs, position, (e, n) => (e ? rej(e) : res(n))));
    },
    checkUnchanged() {
      if (o.checkSize && fstatSync(fd).size !== size) throw new SwarmError(ERROR_CODES.FILE_CHANGED, 'changed');
    },
    async close() {},
    lend() {
      counts.lent++;
      let back = false;
      return {
        fd,
        release: () => {
          if (!back) counts.lent--;
          back = true;
        },
      };
    },
  });
  const source: ChunkSource = { manifest: m, complete: true, has: () => true, bitfield: () => new Uint8Array(0), open: async () => reader({ checkSize: true }), packetSums: (c) => sums.subarray(c * per, (c + 1) * per) };
  return { file, data, m, fd, counts, reader, source };
}

function hooks(over: Partial<SenderHooks> = {}): SenderHooks {
  return { closed: () => false, blocked: () => {}, active: () => {}, slot: async () => {}, sent: () => {}, abandoned: () => {}, ...over };
}

/** Send chunks [from, to) through a RangeSender on a fresh socket pair; the receiver starts reading after `pauseMs`. */
async function sendAll(t: Test, fx: ReturnType<typeof fileFixture>, o: { from?: number; to?: number; pauseMs?: number; reader?: SourceReader; hooks?: Partial<SenderHooks>; during?: (s: RangeSender) => void } = {}) {
  const { a, b } = await socketPair(t);
  const got: Buffer[] = [];
  b.pause();
  b.on('data', (d: Buffer) => got.push(d));
  setTimeout(() => b.resume(), o.pauseMs ?? 0);
  const sender = new RangeSender(a, null, hooks(o.hooks));
  o.during?.(sender);
  let error: unknown = null;
  const to = o.to ?? Math.ceil(fx.m.size / MiB);
  try {
    await sender.send({ id: 5, source: fx.source, from: o.from ?? 0, to, cancelled: false }, o.reader ?? fx.reader({ checkSize: true }));
  } catch (e) {
    error = e;
  }
  a.end();
  await once(b, 'end');
  return { wire: Buffer.concat(got), error, sender };
}

function run(t: Test): void {
  t.test('every byte by the kernel: the sums from hashing, the flags, the payloads; no read of ours', async (t) => {
    const size = 5 * MiB + 12_345;
    const fx = fileFixture(t, size, 11);
    const before = kernelStats.pieces;
    const { wire, error } = await sendAll(t, fx);
    t.equal(error, null, 'sent without error');
    const p = parseWire(wire, size, MiB);
    t.equal(p.bad, 0, 'every packet checksum and length is right');
    t.equal(p.messages.length, 0, 'nothing but packets');
    t.equal(p.packets, Math.ceil(size / PACKET_PAYLOAD_BYTES));
    t.same(p.lastFlags, [0, 1, 2, 3, 4, 5], 'the last packet of each chunk, and only it, is flagged');
    t.ok(p.out.equals(fx.data), 'the payloads reassemble into the file');
    t.equal(fx.counts.reads, 0, 'no byte was read through our memory');
    t.equal(kernelStats.pieces - before, 6, 'six pieces went by the kernel');
    t.equal(fx.counts.lent, 0, 'the descriptor was given back');
  });

  t.test('a receiver that is slower than the sender: the waits on a full socket lose and repeat nothing', async (t) => {
    const size = 24 * MiB;
    const fx = fileFixture(t, size, 12);
    const waits = kernelStats.waits;
    const blocked: number[] = [];
    const { wire, error } = await sendAll(t, fx, { pauseMs: 300, hooks: { blocked: (at) => blocked.push(at) } });
    t.equal(error, null);
    t.ok(kernelStats.waits > waits, `the socket was full and waited for (${kernelStats.waits - waits} waits)`);
    t.ok(blocked.some((x) => x > 0) && blocked.includes(0), 'the session heard it was blocked, then that bytes flowed again');
    const p = parseWire(wire, size, MiB);
    t.equal(p.bad, 0);
    t.equal(p.payloadBytes, size, 'each byte once');
    t.ok(p.out.equals(fx.data));
  });

  t.test('frames written while a piece is under way land between pieces, in order, never inside one', async (t) => {
    const size = 16 * MiB;
    const fx = fileFixture(t, size, 13);
    let timer: NodeJS.Timeout | undefined;
    let held = 0;
    const { wire, error } = await sendAll(t, fx, {
      pauseMs: 200,
      during: (s) => {
        let n = 0;
        timer = setInterval(() => {
          if (s.gate.holding) held++;
          s.gate.write(encodeFrame({ t: 'have', cid: fx.m.cid, chunks: [n] }));
          if (++n >= 40) clearInterval(timer);
        }, 5);
      },
    });
    clearInterval(timer);
    t.equal(error, null);
    const p = parseWire(wire, size, MiB);
    t.equal(p.bad, 0, 'every packet intact');
    t.ok(p.out.equals(fx.data), 'every byte right');
    const haves = p.messages.map((x) => (x.header.chunks as number[])[0]);
    t.same(haves, haves.slice().sort((x, y) => x - y), 'the frames in the order written');
    t.ok(haves.length > 0, `frames arrived (${haves.length})`);
    t.ok(held > 0, `some were written while the gate held (${held})`);
    t.ok(p.messages.every((x) => x.afterPackets % (MiB / PACKET_PAYLOAD_BYTES) === 0), 'each between two pieces');
  });

  for (const checkSize of [true, false]) {
    t.test(`a file that shrinks while served: FILE_CHANGED, chunk 1 never finished (${checkSize ? 'the size check sees it' : 'no check: the kernel finds the end'})`, async (t) => {
      const size = 4 * MiB;
      const fx = fileFixture(t, size, 14);
      let pieces = 0;
      const { wire, error } = await sendAll(t, fx, {
        reader: fx.reader({ checkSize }),
        hooks: {
          active: () => {
            if (++pieces === 1) ftruncateSync(openSync(fx.file, 'r+'), MiB + 300_000);
          },
        },
      });
      t.ok(error instanceof SwarmError && error.code === ERROR_CODES.FILE_CHANGED, `FILE_CHANGED (${String(error)})`);
      const p = parseWire(wire, size, MiB);
      t.equal(p.bad, 0, 'what went out checks');
      t.same(p.lastFlags, [0], 'only chunk 0 was finished');
      t.ok(p.out.subarray(0, MiB).equals(fx.data.subarray(0, MiB)));
      t.equal(fx.counts.lent, 0, 'the descriptor was given back');
    });
  }

  t.test('the connection closes while the kernel waits on a full socket: the send ends, no descriptor left', async (t) => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const size = 32 * MiB;
    const fx = fileFixture(t, size, 15);
    const { a, b } = await socketPair(t);
    b.pause(); // never reads
    let closed = false;
    const sender = new RangeSender(a, null, hooks({ closed: () => closed }));
    const open = fds();
    const waits = kernelStats.waits;
    const sending = sender.send({ id: 1, source: fx.source, from: 0, to: 32, cancelled: false }, fx.reader({ checkSize: true })).then(
      () => null,
      (e: unknown) => e,
    );
    for (let i = 0; i < 200 && kernelStats.waits === waits; i++) await new Promise((r) => setTimeout(r, 10));
    t.ok(kernelStats.waits > waits, 'the kernel path waits on the full socket');
    closed = true;
    a.destroy();
    b.destroy();
    const err = await sending;
    t.ok(err === null || (err instanceof SwarmError && err.code === ERROR_CODES.PEER_CLOSED), `ended (${String(err)})`);
    t.equal(fx.counts.lent, 0, 'the file descriptor was given back');
    for (let i = 0; i < 50 && fds() > open - 1; i++) await new Promise((r) => setTimeout(r, 10));
    t.ok(fds() <= open - 1, `the socket's descriptor and the helper's duplicates are closed (${open} -> ${fds()})`);
  });

  t.test('under an upload limit the bytes flow in small pieces, never a second of silence', async (t) => {
    const size = 3 * MiB;
    const fx = fileFixture(t, size, 18);
    const { a, b } = await socketPair(t);
    const RATE = 768 << 10; // a 1 MiB piece waited 1.3 s for its tokens before any of it went out
    const sender = new RangeSender(a, new TokenBucket(RATE, Date.now()), hooks());
    let last = Date.now();
    let gap = 0;
    const got: Buffer[] = [];
    b.on('data', (d: Buffer) => {
      const now = Date.now();
      gap = Math.max(gap, now - last);
      last = now;
      got.push(d);
    });
    await sender.send({ id: 3, source: fx.source, from: 0, to: 3, cancelled: false }, fx.reader({ checkSize: true }));
    a.end();
    await once(b, 'end');
    t.ok(parseWire(Buffer.concat(got), size, MiB).out.equals(fx.data), 'every byte');
    t.ok(gap < 700, `the longest silence ${gap} ms (1 MiB pieces: ~1,300 ms, taken for a stall by a client)`);
  });

  t.test('turned off, the same reader is served by copying (the path without the helper)', async (t) => {
    setKernelSend(false);
    t.teardown(() => setKernelSend(undefined));
    const size = 3 * MiB;
    const fx = fileFixture(t, size, 16);
    const before = kernelStats.pieces;
    const { wire, error } = await sendAll(t, fx);
    t.equal(error, null);
    t.ok(fx.counts.reads > 0, 'read through our memory');
    t.equal(kernelStats.pieces, before, 'nothing by the kernel');
    t.ok(parseWire(wire, size, MiB).out.equals(fx.data));
  });

  t.test('serve + get of a real share: the seeder sends by the kernel, the file arrives whole', async (t) => {
    const dir = tempDir(t);
    const out = tempDir(t);
    const data = randomBytes(prng(17), 6 * MiB + 777);
    writeFileSync(path.join(dir, 'film.bin'), data);
    const h = await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false });
    t.teardown(() => h.close({ graceful: false }));
    const before = kernelStats.pieces;
    await get('film.bin', { peers: [`127.0.0.1:${h.port}`], outDir: out, threads: 0 });
    t.ok(readFileSync(path.join(out, 'film.bin')).equals(data), 'byte-identical');
    // 6 full chunks by the kernel; the 777-byte tail, asked alone, may take the copying path
    t.ok(kernelStats.pieces - before >= 6, `the pieces went by the kernel (${kernelStats.pieces - before})`);
  });
}
