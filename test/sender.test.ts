/**
 * The range sender's wire output, byte for byte: a piece is read into payload slots with a gap
 * before each and sent as one write, so these check what a receiver sees — every packet's frame
 * prefix, header, checksum, offsets and last-in-chunk flag, and the payloads reassembled into the
 * source's bytes — for sources whose vectored read is short, that have none, and that shrink.
 */
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { RangeSender, type SenderHooks } from '../lib/peer/sender.js';
import type { ChunkSource, SourceReader } from '../lib/peer/source.js';
import type { Manifest } from '../lib/manifest.js';
import { sum16 } from '../lib/protocol/checksum.js';
import { PACKET_PAYLOAD_BYTES } from '../lib/constants.js';
import { ERROR_CODES, SwarmError } from '../lib/errors.js';
import { prng, randomBytes } from './helpers/prng.js';
import { parseWire, socketPair } from './helpers/wire.js';

const MiB = 1 << 20;

/** A reader over `data` whose reads return at most `cap` bytes, with or without `readv`. */
function reader(data: Buffer, o: { cap: number; vectored: boolean; shrinkAt?: number }): SourceReader & { calls: { read: number; readv: number } } {
  const end = o.shrinkAt ?? data.length;
  const calls = { read: 0, readv: 0 };
  const r: SourceReader & { calls: typeof calls } = {
    calls,
    async read(buf, at, length, position) {
      calls.read++;
      const n = Math.max(0, Math.min(length, o.cap, end - position));
      data.copy(buf, at, position, position + n);
      return n;
    },
    checkUnchanged() {},
    async close() {},
  };
  if (o.vectored) {
    r.readv = async (bufs, position) => {
      calls.readv++;
      let pos = position;
      let budget = o.cap;
      for (const b of bufs) {
        const n = Math.max(0, Math.min(b.length, budget, end - pos));
        data.copy(b, 0, pos, pos + n);
        pos += n;
        budget -= n;
        if (n < b.length) break;
      }
      return pos - position;
    };
  }
  return r;
}

/** Packets parsed out of `wire` (helpers/wire.ts); a control frame among them counts as bad here. */
function parse(wire: Buffer, size: number, chunkBytes: number) {
  const p = parseWire(wire, size, chunkBytes);
  return { ...p, bad: p.bad + p.messages.length };
}

const hooks = (): SenderHooks => ({
  closed: () => false,
  blocked: () => {},
  active: () => {},
  slot: async () => {},
  sent: () => {},
  abandoned: () => {},
});

async function sendAll(t: Test, m: Manifest, from: number, to: number, r: SourceReader, packetSums?: (chunk: number) => Uint16Array | null): Promise<{ wire: Buffer; error: unknown }> {
  const { a, b } = await socketPair(t);
  const got: Buffer[] = [];
  b.on('data', (d: Buffer) => got.push(d));
  const sender = new RangeSender(a, null, hooks());
  const source: ChunkSource = { manifest: m, complete: true, has: () => true, bitfield: () => new Uint8Array(0), open: async () => r, ...(packetSums ? { packetSums } : {}) };
  let error: unknown = null;
  try {
    await sender.send({ id: 9, source, from, to, cancelled: false }, r);
  } catch (e) {
    error = e;
  }
  a.end();
  await once(b, 'end');
  return { wire: Buffer.concat(got), error };
}

const size = 3 * MiB + 12_345; // four chunks, the last one short and not a multiple of a packet
const data = randomBytes(prng(7), size);
const m: Manifest = { cid: 'ab'.repeat(32), size, chunkBytes: MiB, hashes: Buffer.alloc(0) };

for (const o of [
  { name: 'one vectored read per piece', cap: Infinity, vectored: true },
  { name: 'vectored reads cut short (10,000 bytes a call)', cap: 10_000, vectored: true },
  { name: 'a source without readv (single reads of at most 65,000 bytes)', cap: 65_000, vectored: false },
]) {
  t.test(`every byte arrives in checksummed packets: ${o.name}`, async (t) => {
    const r = reader(data, o);
    const { wire, error } = await sendAll(t, m, 0, 4, r);
    t.equal(error, null, 'sent without error');
    const p = parse(wire, size, MiB);
    t.equal(p.bad, 0, 'every packet checksum and length is right');
    t.equal(p.packets, Math.ceil(size / PACKET_PAYLOAD_BYTES), 'one packet per 64 KiB of payload, none straddling a chunk');
    t.same(p.lastFlags, [0, 1, 2, 3], 'the last packet of each chunk, and only it, is flagged');
    t.ok(p.out.equals(data), 'the payloads reassemble into the source');
    if (o.vectored) t.ok(r.calls.readv > 0, 'the vectored read was used');
  });
}

t.test('packet sums taken when the file was hashed are the ones sent', async (t) => {
  const per = MiB / PACKET_PAYLOAD_BYTES;
  const sums = new Uint16Array(4 * per);
  for (let i = 0; i * PACKET_PAYLOAD_BYTES < size; i++) sums[i] = sum16(data.subarray(i * PACKET_PAYLOAD_BYTES, Math.min(size, (i + 1) * PACKET_PAYLOAD_BYTES)));
  const right = await sendAll(t, m, 0, 4, reader(data, { cap: Infinity, vectored: true }), (c) => sums.subarray(c * per, (c + 1) * per));
  const p = parse(right.wire, size, MiB);
  t.equal(p.bad, 0, 'with the right sums every packet checks');
  t.ok(p.out.equals(data));
  // one wrong stored sum must show as one bad packet: proof the stored sums are what goes out
  const wrong = sums.slice();
  wrong[per + 3] = (wrong[per + 3]! + 1) & 0xffff;
  const bad = await sendAll(t, m, 0, 4, reader(data, { cap: Infinity, vectored: true }), (c) => wrong.subarray(c * per, (c + 1) * per));
  t.equal(parse(bad.wire, size, MiB).bad, 1, 'a wrong stored sum spoils exactly its packet');
});

t.test('a middle range: only the chunks asked for', async (t) => {
  const { wire, error } = await sendAll(t, m, 1, 3, reader(data, { cap: Infinity, vectored: true }));
  t.equal(error, null);
  const p = parse(wire, size, MiB);
  t.equal(p.bad, 0);
  t.same(p.lastFlags, [1, 2]);
  t.ok(p.out.subarray(MiB, 3 * MiB).equals(data.subarray(MiB, 3 * MiB)), 'chunks 1 and 2 as in the source');
  t.ok(p.out.subarray(0, MiB).equals(Buffer.alloc(MiB)), 'nothing of chunk 0 was sent');
});

t.test('a source that shrinks mid-piece: FILE_CHANGED, and no packet of the short piece goes out', async (t) => {
  const shrinkAt = MiB + 300_000;
  const { wire, error } = await sendAll(t, m, 0, 4, reader(data, { cap: 10_000, vectored: true, shrinkAt }));
  t.ok(error instanceof SwarmError && error.code === ERROR_CODES.FILE_CHANGED, `send fails with FILE_CHANGED (${String(error)})`);
  const p = parse(wire, size, MiB);
  t.equal(p.bad, 0);
  t.ok(p.lastFlags.every((c) => c < 1), 'chunk 1, which could not be read whole, was never finished');
  t.ok(p.payloadBytes <= shrinkAt, `only bytes before the end were sent (${p.payloadBytes} of ${shrinkAt})`);
  t.ok(p.out.subarray(0, p.payloadBytes).equals(data.subarray(0, p.payloadBytes)), 'and they are the source bytes');
});
