import t from 'tap';
import { FrameDecoder, encodeFrameBuffer, type Header } from '../lib/protocol/frame.js';
import { encodePacket, packetHeaderSum, packetChecksumOk, type PacketHeader } from '../lib/protocol/packet.js';
import { sum16 } from '../lib/protocol/checksum.js';
import { decodeMessage } from '../lib/protocol/messages.js';
import { SwarmError } from '../lib/errors.js';
import { prng, randomBytes } from './helpers/prng.js';

type Event = { kind: 'msg'; header: Header; body: string } | { kind: 'pkt'; h: PacketHeader; ok: boolean; payload: string };

function collector(): { events: Event[]; decoder: FrameDecoder } {
  const events: Event[] = [];
  const decoder = new FrameDecoder({
    onMessage(header, body) {
      events.push({ kind: 'msg', header, body: body.toString('hex') });
    },
    onPacket(h, raw, pieces) {
      const payload = Buffer.concat(pieces);
      events.push({ kind: 'pkt', h, ok: packetChecksumOk(h, packetHeaderSum(raw), sum16(payload)), payload: payload.toString('hex') });
    },
  });
  return { events, decoder };
}

const rand = prng(42);
const frames = [
  encodeFrameBuffer({ t: 'list', id: 1 }),
  encodeFrameBuffer({ t: 'manifest-ok', id: 2, name: 'dir/ünïcode name.iso', size: 5, mtime: 1, chunkBytes: 1, cid: 'ab', chunks: 5 }, randomBytes(rand, 40)),
  encodePacket({ flags: 1, requestId: 3, chunk: 9, offset: 2 ** 32 + 7 }, randomBytes(rand, 1000)),
  encodeFrameBuffer({ t: 'done', id: 3 }),
  encodePacket({ flags: 0, requestId: 4, chunk: 0, offset: 0 }, Buffer.alloc(0)),
  encodeFrameBuffer({ t: 'error', code: 'X', message: 'y' }, Buffer.alloc(0)),
];
const stream = Buffer.concat(frames);

function decodeAll(pieces: Buffer[]): Event[] {
  const { events, decoder } = collector();
  for (const p of pieces) decoder.push(p);
  decoder.end();
  return events;
}

const expected = decodeAll([stream]);

t.test('whole stream decodes to every frame', async (t) => {
  t.equal(expected.length, frames.length);
  t.ok(expected.every((e) => e.kind === 'msg' || e.ok), 'packet checksums verify');
  t.same((expected[1] as { header: Header }).header.name, 'dir/ünïcode name.iso');
});

t.test('split at every offset into two reads', async (t) => {
  let mismatches = 0;
  for (let cut = 0; cut <= stream.length; cut++) {
    const got = decodeAll([stream.subarray(0, cut), stream.subarray(cut)]);
    if (JSON.stringify(got) !== JSON.stringify(expected)) mismatches++;
  }
  t.equal(mismatches, 0, `${stream.length + 1} split points`);
});

t.test('one byte at a time, and in random-sized reads', async (t) => {
  const bytes: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) bytes.push(stream.subarray(i, i + 1));
  t.same(decodeAll(bytes), expected);
  for (let round = 0; round < 50; round++) {
    const pieces: Buffer[] = [];
    for (let at = 0; at < stream.length; ) {
      const n = 1 + Math.floor(rand() * 300);
      pieces.push(stream.subarray(at, at + n));
      at += n;
    }
    t.same(decodeAll(pieces), expected, `round ${round}`);
  }
});

t.test('many frames in one read, then a second copy of the stream', async (t) => {
  t.same(decodeAll([Buffer.concat([stream, stream])]), [...expected, ...expected]);
});

function prefix(headerLen: number, bodyLen: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(headerLen, 0);
  b.writeUInt32BE(bodyLen, 4);
  return b;
}

t.test('declared lengths beyond the limits are rejected before allocation', async (t) => {
  const before = process.memoryUsage().arrayBuffers;
  const { decoder } = collector();
  t.throws(() => decoder.push(prefix(10, 0xffffffff)), { code: 'SWARM_ERR_FRAME_TOO_LARGE' });
  t.throws(() => collector().decoder.push(prefix(0xffffffff, 0)), { code: 'SWARM_ERR_FRAME_TOO_LARGE' });
  t.throws(() => collector().decoder.push(prefix(0, 0xfffffff0)), { code: 'SWARM_ERR_FRAME_TOO_LARGE' });
  t.throws(() => collector().decoder.push(prefix(0, 3)), { code: 'SWARM_ERR_BAD_PACKET' });
  t.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'no large buffer was allocated');
  // once broken, the decoder keeps failing rather than resynchronising on garbage
  t.throws(() => decoder.push(Buffer.from('{}')), { code: 'SWARM_ERR_FRAME_TOO_LARGE' });
});

t.test('truncated frames, bad JSON, non-object headers', async (t) => {
  const cut = stream.subarray(0, stream.length - 3);
  const { decoder } = collector();
  decoder.push(cut);
  t.throws(() => decoder.end(), { code: 'SWARM_ERR_TRUNCATED' });
  const bad = Buffer.concat([prefix(5, 0), Buffer.from('{nope')]);
  t.throws(() => collector().decoder.push(bad), { code: 'SWARM_ERR_BAD_JSON' });
  const arr = Buffer.concat([prefix(2, 0), Buffer.from('[]')]);
  t.throws(() => collector().decoder.push(arr), { code: 'SWARM_ERR_BAD_MESSAGE' });
  const noType = Buffer.concat([prefix(8, 0), Buffer.from('{"a":12}')]);
  t.throws(() => collector().decoder.push(noType), { code: 'SWARM_ERR_BAD_MESSAGE' });
  // a packet whose own length disagrees with its frame
  const pkt = encodePacket({ flags: 0, requestId: 1, chunk: 0, offset: 0 }, Buffer.alloc(16));
  pkt.writeUInt32BE(15, 8 + 20);
  t.throws(() => collector().decoder.push(pkt), { code: 'SWARM_ERR_BAD_PACKET' });
});

t.test('message checks: unknown types and wrong fields', async (t) => {
  const cid = 'ab'.repeat(32);
  t.same(decodeMessage('peerRequest', { t: 'frobnicate', id: 4 }), { t: 'unknown', type: 'frobnicate', id: 4 }, 'unknown types decode as unknown (skipped after hello)');
  t.throws(() => decodeMessage('peerRequest', { t: 'manifest', id: 1 }), { code: 'SWARM_ERR_BAD_MESSAGE' });
  t.throws(() => decodeMessage('peerRequest', { t: 'manifest', id: 1, cid: 'c' }), { code: 'SWARM_ERR_BAD_MESSAGE' }, 'a content id is 64 hex digits');
  t.throws(() => decodeMessage('peerRequest', { t: 'get', id: 1, cid, from: -1, to: 2 }), { code: 'SWARM_ERR_BAD_MESSAGE' });
  t.throws(() => decodeMessage('trackerRequest', { t: 'register', id: 1, port: 1, files: {} }), { code: 'SWARM_ERR_BAD_MESSAGE' });
  t.throws(() => decodeMessage('trackerRequest', { t: 'register', id: 1, port: 70000, files: [] }), { code: 'SWARM_ERR_BAD_MESSAGE' }, 'ports above 65535 are refused');
  t.throws(() => decodeMessage('peerRequest', { t: 'hello', v: 2, peer: 'not hex' }), { code: 'SWARM_ERR_BAD_MESSAGE' });
  t.same(decodeMessage('peerRequest', { t: 'get', id: 1, cid, from: 0, to: 2, extra: 'ignored' }), { t: 'get', id: 1, cid, from: 0, to: 2 }, 'typed: only known fields');
  t.same(decodeMessage('trackerReply', { t: 'holders', id: 3, name: 'a', versions: [] }), { t: 'holders', id: 3, name: 'a', versions: [] });
  t.same(decodeMessage('peerRequest', { t: '__proto__', id: 1 }), { t: 'unknown', type: '__proto__', id: 1 }, 'no prototype lookups');
});

t.test('10,000 random byte strings into every decoder: typed errors only, never an uncaught throw', async (t) => {
  const { JsonObjectSplitter } = await import('../lib/protocol/json-stream.js');
  const { decodePacketHeader } = await import('../lib/protocol/packet.js');
  const r = prng(1234);
  const started = Date.now();
  const typed = { frame: 0, streaming: 0, packet: 0, json: 0 };
  let inputs = 0;
  const streamingDecoder = () =>
    new FrameDecoder({ onMessage() {}, onPacketStart() {}, onPacketData() {}, onPacketEnd() {} }, { reuseInput: true });
  const decoders: [keyof typeof typed, (b: Buffer) => void][] = [
    ['frame', (b) => {
      const d = collector().decoder;
      d.push(b);
      d.end();
    }],
    ['streaming', (b) => {
      const d = streamingDecoder();
      for (let at = 0; at < b.length; at += 7) d.push(b.subarray(at, at + 7));
      d.end();
    }],
    ['packet', (b) => void decodePacketHeader(b)],
    ['json', (b) => new JsonObjectSplitter(() => {}, 1024).push(b)],
  ];
  for (let i = 0; i < 10_000 && Date.now() - started < 20_000; i++) {
    const n = Math.floor(r() * 200);
    let bytes = randomBytes(r, n);
    // half the cases start with a plausible prefix so the deeper steps get exercised
    if (i % 2 === 0 && n >= 8) {
      bytes.writeUInt32BE(Math.floor(r() * 40), 0);
      bytes.writeUInt32BE(Math.floor(r() * 80), 4);
      if (i % 4 === 0) bytes = Buffer.concat([bytes.subarray(0, 8), Buffer.from('{"t":"x","a":'), bytes.subarray(8)]);
    }
    if (i % 5 === 0) bytes = Buffer.concat([Buffer.from('{"port":'), bytes]);
    inputs++;
    for (const [name, feed] of decoders) {
      try {
        feed(bytes);
      } catch (err) {
        if (err instanceof SwarmError) typed[name]++;
        else throw err;
      }
    }
  }
  t.equal(inputs, 10_000, 'all inputs fed to every decoder');
  for (const [name, n] of Object.entries(typed)) t.ok(n > 1_000, `${name}: ${n} typed errors`);
});

t.test('streaming mode hands over payload bytes as they arrive, whatever the split', async (t) => {
  for (const step of [1, 3, 64, 1000, stream.length]) {
    const got: string[] = [];
    let payload: Buffer[] = [];
    const d = new FrameDecoder(
      {
        onMessage(h) {
          got.push(`msg:${h.t}`);
        },
        onPacketStart(h) {
          payload = [];
          got.push(`start:${h.chunk}`);
        },
        onPacketData(_h, piece) {
          payload.push(Buffer.from(piece)); // the piece is only valid during the call
        },
        onPacketEnd(h) {
          got.push(`end:${h.chunk}:${Buffer.concat(payload).length}`);
        },
      },
      { reuseInput: true },
    );
    const scratch = Buffer.alloc(step);
    for (let at = 0; at < stream.length; at += step) {
      const n = stream.copy(scratch, 0, at, at + step);
      d.push(scratch.subarray(0, n)); // one buffer reused for every read, as the peer client does
    }
    d.end();
    t.same(got, ['msg:list', 'msg:manifest-ok', 'start:9', 'end:9:1000', 'msg:done', 'start:0', 'end:0:0', 'msg:error'], `reads of ${step}`);
  }
});
