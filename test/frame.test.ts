import t from 'tap';
import { FrameDecoder, encodeFrameBuffer, type Header } from '../lib/protocol/frame.js';
import { encodePacket, packetHeaderSum, packetChecksumOk, type PacketHeader } from '../lib/protocol/packet.js';
import { sum16 } from '../lib/protocol/checksum.js';
import { decodeMessage, helloMessage, checkHello, PROTOCOL_VERSION, type Hello } from '../lib/protocol/messages.js';
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

// ── Protocol 2's swarm messages: hello, interest, bitfield, have, peers, busy ─────────────────

const CID = 'c0ffee'.repeat(10) + 'beef';
const PEER = '0123456789abcdef';
const bits = (n: number, set: number[]) => {
  const b = Buffer.alloc(Math.ceil(n / 8));
  for (const i of set) b[i >> 3]! |= 1 << (i & 7);
  return b.toString('base64');
};
/** Each swarm message, the side that receives it, and what decodeMessage must make of it. */
const swarmCases: { side: 'peerRequest' | 'peerReply' | 'trackerRequest' | 'trackerReply'; wire: Header; typed: Record<string, unknown> }[] = [
  {
    side: 'peerRequest',
    wire: helloMessage({ peer: PEER, agent: 'swarm/0.2.0', listen: 7070, caps: ['bitfield', 'have', 'pex'] }),
    typed: { t: 'hello', v: PROTOCOL_VERSION, peer: PEER, agent: 'swarm/0.2.0', listen: 7070, caps: ['bitfield', 'have', 'pex'] },
  },
  { side: 'peerReply', wire: helloMessage({ peer: PEER, agent: 'a', listen: null }), typed: { t: 'hello', v: PROTOCOL_VERSION, peer: PEER, agent: 'a', caps: [] } },
  { side: 'trackerRequest', wire: { t: 'hello', v: PROTOCOL_VERSION, peer: PEER, future: { x: 1 } }, typed: { t: 'hello', v: PROTOCOL_VERSION, peer: PEER } },
  { side: 'peerRequest', wire: { t: 'interest', cid: CID }, typed: { t: 'interest', cid: CID } },
  { side: 'peerRequest', wire: { t: 'interest', cid: CID, have: bits(21, [0, 7, 8, 20]) }, typed: { t: 'interest', cid: CID, have: bits(21, [0, 7, 8, 20]) } },
  { side: 'peerReply', wire: { t: 'bitfield', cid: CID, have: bits(21, [1, 2, 3]), complete: false }, typed: { t: 'bitfield', cid: CID, have: bits(21, [1, 2, 3]), complete: false } },
  { side: 'peerReply', wire: { t: 'bitfield', cid: CID, have: bits(9, [...Array(9).keys()]) }, typed: { t: 'bitfield', cid: CID, have: bits(9, [...Array(9).keys()]) } },
  { side: 'peerReply', wire: { t: 'have', cid: CID, chunks: [4, 5, 65_535] }, typed: { t: 'have', cid: CID, chunks: [4, 5, 65_535] } },
  { side: 'peerRequest', wire: { t: 'have', cid: CID, chunks: [0] }, typed: { t: 'have', cid: CID, chunks: [0] } },
  {
    side: 'peerReply',
    wire: { t: 'peers', cid: CID, peers: [{ ip: '127.0.0.1', port: 7070 }, { ip: '::1', port: 1 }] },
    typed: { t: 'peers', cid: CID, peers: [{ ip: '127.0.0.1', port: 7070 }, { ip: '::1', port: 1 }] },
  },
  { side: 'peerReply', wire: { t: 'busy', id: 17 }, typed: { t: 'busy', id: 17 } },
];
const swarmStream = Buffer.concat(swarmCases.map((c, i) => (i === 3 ? Buffer.concat([encodeFrameBuffer(c.wire), encodePacket({ flags: 1, requestId: 9, chunk: 2, offset: 7 }, randomBytes(rand, 300))]) : encodeFrameBuffer(c.wire))));
const swarmExpected = decodeAll([swarmStream]);

t.test('swarm messages: every frame comes through, split at every offset and one byte at a time', async (t) => {
  t.equal(swarmExpected.filter((e) => e.kind === 'msg').length, swarmCases.length, 'one message per case');
  t.equal(swarmExpected.filter((e) => e.kind === 'pkt' && e.ok).length, 1, 'and the packet between them, checksum valid');
  t.same(swarmExpected.filter((e): e is Extract<Event, { kind: 'msg' }> => e.kind === 'msg').map((e) => e.header), swarmCases.map((c) => c.wire), 'headers exactly as sent');
  let mismatches = 0;
  for (let cut = 0; cut <= swarmStream.length; cut++) {
    if (JSON.stringify(decodeAll([swarmStream.subarray(0, cut), swarmStream.subarray(cut)])) !== JSON.stringify(swarmExpected)) mismatches++;
  }
  t.equal(mismatches, 0, `${swarmStream.length + 1} split points`);
  const bytes: Buffer[] = [];
  for (let i = 0; i < swarmStream.length; i++) bytes.push(swarmStream.subarray(i, i + 1));
  t.same(decodeAll(bytes), swarmExpected, 'one byte at a time');
});

t.test('swarm messages decode to typed messages, unknown fields left out', async (t) => {
  for (const c of swarmCases) t.same(decodeMessage(c.side, c.wire), c.typed, `${c.side} ${c.wire.t}`);
  // the sides are distinct: a reply type is unknown to the request side, and skipped after hello
  t.same(decodeMessage('peerRequest', { t: 'busy', id: 1 }), { t: 'unknown', type: 'busy', id: 1 });
  t.same(decodeMessage('peerRequest', { t: 'bitfield', cid: CID, have: '' }), { t: 'unknown', type: 'bitfield' });
  t.same(decodeMessage('trackerReply', { t: 'interest', cid: CID }), { t: 'unknown', type: 'interest' });
  t.doesNotThrow(() => checkHello(decodeMessage('peerRequest', swarmCases[0]!.wire) as Hello, 'peer'), 'our own hello passes the version check');
  t.throws(() => checkHello({ t: 'hello', v: 1, peer: PEER }, 'peer x'), { code: 'SWARM_ERR_VERSION', message: /protocol 1.*speaks 2/ }, 'version 1: SWARM_ERR_VERSION');
  t.throws(() => checkHello({ t: 'hello', v: 3, peer: PEER }, 'peer x'), { code: 'SWARM_ERR_VERSION' }, 'version 3: SWARM_ERR_VERSION');
});

t.test('swarm messages with a missing or mistyped field: SWARM_ERR_BAD_MESSAGE', async (t) => {
  const bad: [ 'peerRequest' | 'peerReply', Header, string][] = [
    ['peerRequest', { t: 'hello', peer: PEER }, 'hello without v'],
    ['peerRequest', { t: 'hello', v: 2 }, 'hello without peer'],
    ['peerRequest', { t: 'hello', v: 2, peer: PEER.toUpperCase() }, 'peer id in upper case'],
    ['peerRequest', { t: 'hello', v: 2, peer: PEER + '0' }, 'peer id of 17 digits'],
    ['peerRequest', { t: 'hello', v: -2, peer: PEER }, 'negative version'],
    ['peerRequest', { t: 'hello', v: 2, peer: PEER, listen: 0 }, 'listen port 0'],
    ['peerRequest', { t: 'hello', v: 2, peer: PEER, listen: 65_536 }, 'listen port 65536'],
    ['peerRequest', { t: 'hello', v: 2, peer: PEER, caps: 'pex' }, 'caps not a list'],
    ['peerReply', { t: 'hello', v: 2, peer: PEER, agent: 'x'.repeat(9000) }, 'agent of 9000 chars'],
    ['peerRequest', { t: 'interest' }, 'interest without cid'],
    ['peerRequest', { t: 'interest', cid: CID.slice(1) }, 'interest with a 63-digit cid'],
    ['peerRequest', { t: 'interest', cid: CID, have: [1, 2] }, 'interest with have not a string'],
    ['peerReply', { t: 'bitfield', cid: CID }, 'bitfield without have'],
    ['peerReply', { t: 'bitfield', cid: CID, have: 7 }, 'bitfield have a number'],
    ['peerReply', { t: 'bitfield', cid: CID, have: '', complete: 'yes' }, 'complete not a boolean'],
    ['peerReply', { t: 'have', cid: CID, chunks: 5 }, 'have chunks not a list'],
    ['peerRequest', { t: 'have', cid: 'x', chunks: [] }, 'have with a bad cid'],
    ['peerReply', { t: 'peers', cid: CID, peers: {} }, 'peers not a list'],
    ['peerReply', { t: 'busy' }, 'busy without id'],
    ['peerReply', { t: 'busy', id: -1 }, 'busy with a negative id'],
    ['peerReply', { t: 'busy', id: 1.5 }, 'busy with a fractional id'],
  ];
  for (const [side, h, what] of bad) t.throws(() => decodeMessage(side, h), { code: 'SWARM_ERR_BAD_MESSAGE' }, what);
  // the elements of a `peers` list are checked one by one: bad ones dropped, good ones kept
  const { checkAddresses } = await import('../lib/protocol/entries.js');
  const c = checkAddresses([{ ip: '127.0.0.1', port: 7070 }, { ip: 'example.org', port: 1 }, { ip: '127.0.0.2', port: 0 }, 'x', null, { ip: '127.0.0.1', port: 7070 }]);
  t.same(c.ok, [{ ip: '127.0.0.1', port: 7070 }], 'one valid address (its duplicate collapsed)');
  t.equal(c.dropped.length, 4, 'four bad entries dropped');
});

t.test('swarm messages fuzzed: mutated frames and mutated fields raise SwarmError only', async (t) => {
  const r = prng(4242);
  const sides = ['peerRequest', 'peerReply', 'trackerRequest', 'trackerReply'] as const;
  const started = Date.now();
  const seen = { frames: 0, typedErrors: 0, decoded: 0 };
  const values: unknown[] = [null, true, false, 0, -1, 1.5, 2 ** 53, '', 'x', CID, PEER, [], [1, 'a', null], {}, { ip: '127.0.0.1' }, '\u0000', '__proto__', Number.NaN];
  /** Feed bytes in random-sized reads; every header that came out is decoded for every side. */
  const feed = (bytes: Buffer) => {
    const headers: Header[] = [];
    const d = new FrameDecoder({ onMessage: (h) => void headers.push(h), onPacket() {} });
    try {
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(r() * 64);
        d.push(bytes.subarray(at, at + n));
        at += n;
      }
      d.end();
    } finally {
      for (const h of headers) for (const side of sides) guard(() => void decodeMessage(side, h)), seen.decoded++;
    }
  };
  const guard = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof SwarmError)) throw err;
      seen.typedErrors++;
    }
  };
  for (let i = 0; i < 4_000 && Date.now() - started < 15_000; i++) {
    const c = swarmCases[Math.floor(r() * swarmCases.length)]!;
    // byte mutations of the encoded frame: flips, cuts, insertions
    const enc = Buffer.from(encodeFrameBuffer(c.wire));
    const kind = i % 3;
    let bytes: Buffer;
    if (kind === 0) {
      bytes = enc;
      for (let k = 0; k < 1 + Math.floor(r() * 4); k++) bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256);
    } else if (kind === 1) bytes = enc.subarray(0, Math.floor(r() * enc.length));
    else {
      const at = Math.floor(r() * enc.length);
      bytes = Buffer.concat([enc.subarray(0, at), randomBytes(r, 1 + Math.floor(r() * 8)), enc.subarray(at)]);
    }
    seen.frames++;
    guard(() => feed(bytes));
    // field mutations: any field of the message (or a new one) takes any JSON value
    const h: Header = { ...c.wire };
    const keys = [...Object.keys(h), 'id', 'have', 'chunks', 'peers', 'listen'];
    for (let k = 0; k < 1 + Math.floor(r() * 3); k++) {
      const key = keys[Math.floor(r() * keys.length)]!;
      if (key === 't') continue;
      (h as Record<string, unknown>)[key] = values[Math.floor(r() * values.length)];
    }
    // through the decoder too: the mutated header as a well-formed frame, with some random bytes after
    guard(() => feed(Buffer.concat([encodeFrameBuffer(JSON.parse(JSON.stringify(h)) as Header), randomBytes(r, Math.floor(r() * 3))])));
  }
  t.equal(seen.frames, 4_000, 'all mutations fed');
  t.ok(seen.typedErrors > 1_000, `${seen.typedErrors} typed errors`);
  t.ok(seen.decoded > 4_000, `${seen.decoded} decodeMessage calls on mutated headers that came through the frame decoder`);
});
