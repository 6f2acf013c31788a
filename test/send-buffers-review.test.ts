/**
 * Hostile review of the shared serving read buffers (send-buffers.ts, sender.ts): a PeerServer on
 * 127.0.0.1 over in-memory sources whose reads fill their buffers LATER, on a timer (as libuv's
 * thread pool does), and whose change check fails now and then. Every buffer the pool lends is
 * tracked: a read must never fill a buffer that was given back (or lent again), a buffer must
 * never be lent while a socket write of it is pending, never given back twice, and every one
 * comes back once the connections are gone. Meanwhile raw clients check every byte and checksum
 * they get while others cancel, close mid-piece, never read, and get-and-drop.
 */
import t from 'tap';
import net from 'node:net';
import { PeerServer } from '../lib/peer/server.js';
import { sendBuffers } from '../lib/peer/sender.js';
import type { SendBuffer } from '../lib/peer/send-buffers.js';
import { makeManifest, type Manifest } from '../lib/manifest.js';
import { fullBitfield } from '../lib/scheduling/availability.js';
import { ERROR_CODES, SwarmError } from '../lib/errors.js';
import type { ChunkSource, SourceIndex, SourceReader } from '../lib/peer/source.js';
import { encodeFrameBuffer, FrameDecoder, type Header } from '../lib/protocol/frame.js';
import { helloMessage } from '../lib/protocol/messages.js';
import { packetChecksumOk, packetHeaderSum } from '../lib/protocol/packet.js';
import { sum16 } from '../lib/protocol/checksum.js';
import { newPeerId } from '../lib/net/identity.js';

const MiB = 1 << 20;
const byteOf = (tag: number, o: number) => (o * 7 + (o >>> 10) * 13 + tag * 101) & 0xff;

// ---- the pool, watched
const lent = new Set<SendBuffer>();
const gen = new Map<SendBuffer, number>();
const writing = new Map<SendBuffer, number>();
const byMemory = new Map<ArrayBufferLike, Set<SendBuffer>>();
const violations: string[] = [];
let doubleGives = 0;
let takes = 0;
const realTake = sendBuffers.take.bind(sendBuffers);
const realGive = sendBuffers.give.bind(sendBuffers);
const slotOf = (v: Uint8Array) => {
  for (const b of byMemory.get(v.buffer) ?? []) if (v.byteOffset >= b.bytes.byteOffset && v.byteOffset < b.bytes.byteOffset + b.bytes.length) return b;
  return undefined;
};
sendBuffers.take = (...args: unknown[]) => {
  const b = (realTake as (...a: unknown[]) => SendBuffer)(...args);
  takes++;
  if (lent.has(b)) violations.push('a buffer lent twice at once');
  if (writing.get(b)) violations.push('a buffer lent while a socket write of it is pending');
  lent.add(b);
  gen.set(b, (gen.get(b) ?? 0) + 1);
  let m = byMemory.get(b.bytes.buffer);
  if (!m) byMemory.set(b.bytes.buffer, (m = new Set()));
  m.add(b);
  return b;
};
sendBuffers.give = (b: SendBuffer) => {
  if (writing.get(b)) violations.push('a buffer given back while a socket write of it is pending');
  const ok = realGive(b);
  if (!ok) doubleGives++;
  else lent.delete(b), byMemory.get(b.bytes.buffer)?.delete(b);
  return ok;
};
// socket writes of pool buffers: pending until their callback
const realWrite = net.Socket.prototype.write;
net.Socket.prototype.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]) {
  const sb = chunk instanceof Uint8Array ? slotOf(chunk) : undefined;
  if (!sb || !lent.has(sb)) return (realWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  const cb = rest.find((x) => typeof x === 'function') as ((e?: Error | null) => void) | undefined;
  writing.set(sb, (writing.get(sb) ?? 0) + 1);
  return (realWrite as (...a: unknown[]) => boolean).call(this, chunk, (err?: Error | null) => {
    writing.set(sb, writing.get(sb)! - 1);
    cb?.(err);
  });
} as typeof realWrite;
t.teardown(() => {
  net.Socket.prototype.write = realWrite;
  sendBuffers.take = realTake;
  sendBuffers.give = realGive;
});

// ---- sources whose reads land later, as the thread pool's do
let pendingFills = 0;
function source(tag: number, size: number): ChunkSource {
  const chunkBytes = MiB;
  const chunks = Math.ceil(size / chunkBytes);
  const m: Manifest = makeManifest(size, chunkBytes, Buffer.alloc(chunks * 32, tag));
  const bits = fullBitfield(chunks);
  const fill = (v: Buffer, at: number, length: number, pos: number) => {
    for (let i = 0; i < length; i++) v[at + i] = byteOf(tag, pos + i);
  };
  const reader: SourceReader = {
    read: (buf, at, length, position) => {
      const sb = slotOf(buf);
      const g = sb && gen.get(sb);
      pendingFills++;
      return new Promise((resolve) =>
        setTimeout(
          () => {
            pendingFills--;
            if (sb && (!lent.has(sb) || gen.get(sb) !== g)) violations.push('a read filled a buffer given back (or lent again) before it ended');
            if (sb && writing.get(sb)) violations.push('a read filled a buffer that a socket is writing');
            const n = Math.max(0, Math.min(length, size - position));
            fill(buf, at, n, position);
            resolve(n);
          },
          Math.random() * 3,
        ),
      );
    },
    // now and then the file "changed": the read's buffer goes back, the request fails
    checkUnchanged: () => {
      if (Math.random() < 0.01) throw new SwarmError(ERROR_CODES.FILE_CHANGED, 'changed (test)');
    },
    close: async () => {},
  };
  // packetSums absent: payloads are summed in the arena, where they were read
  return { manifest: m, complete: true, has: () => true, bitfield: () => bits, open: async () => reader };
}

interface Client {
  socket: net.Socket;
  send(h: Header): void;
  onMessage: (h: Header) => void;
  onPacket: (h: { requestId: number; offset: number; chunk: number; flags: number }, payload: Buffer) => void;
  bad: string[];
}

t.test('a shared read buffer is never in two places at once, and every one comes back', async (t) => {
  const srcs = [source(1, 24 * MiB + 1234), source(2, 24 * MiB + 77), source(3, 100_000)];
  const byCid = new Map(srcs.map((s, i) => [s.manifest.cid, { s, tag: i + 1 }]));
  const index: SourceIndex = { list: () => ({ files: [] }), stat: () => undefined, byCid: (c) => byCid.get(c)?.s, openByName: async () => undefined };
  const server = new PeerServer(index, { limits: { maxPerIp: 1000, maxConnections: 1000 }, ...(process.env.SLOTS ? { uploadSlots: Number(process.env.SLOTS) } : {}) });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close({ graceful: false }));
  const all: net.Socket[] = [];
  t.teardown(() => all.forEach((s) => s.destroy()));

  function client(read = true): Client {
    const socket = net.connect({ host: '127.0.0.1', port });
    all.push(socket);
    socket.on('error', () => {});
    const c: Client = { socket, send: (h) => void (!socket.destroyed && socket.write(encodeFrameBuffer(h))), onMessage: () => {}, onPacket: () => {}, bad: [] };
    const dec = new FrameDecoder({
      onMessage: (h) => c.onMessage(h),
      onPacket: (h, raw, pieces) => {
        const payload = Buffer.concat(pieces);
        if (!packetChecksumOk(h, packetHeaderSum(raw), sum16(payload))) c.bad.push(`checksum at ${h.offset}`);
        c.onPacket(h, payload);
      },
    });
    if (read) socket.on('data', (d) => dec.push(d));
    else socket.pause();
    c.send(helloMessage({ peer: newPeerId(), agent: 'review/1' }));
    return c;
  }

  const until = Date.now() + 5_000;
  const live = () => Date.now() < until;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const pick = <T>(a: T[]) => a[Math.floor(Math.random() * a.length)]!;
  let verified = 0;
  let served = 0;
  let cancels = 0;
  const stalls: string[] = [];
  const wrong: string[] = [];

  // verifiers: long-lived; each byte checked against its own source; some requests cancelled
  const verifier = async (k: number) => {
    const c = client();
    const reqs = new Map<number, { src: ChunkSource; tag: number; from: number; to: number; end: (h: unknown) => void }>();
    c.onPacket = (h, payload) => {
      const r = reqs.get(h.requestId);
      if (!r) return void wrong.push(`verifier ${k}: packet of unknown request ${h.requestId}`);
      const cb = r.src.manifest.chunkBytes;
      if (h.offset < r.from * cb || h.offset + payload.length > Math.min(r.src.manifest.size, r.to * cb)) return void wrong.push(`verifier ${k}: offset ${h.offset} outside its request`);
      for (let i = 0; i < payload.length; i++) {
        if (payload[i] !== byteOf(r.tag, h.offset + i)) return void wrong.push(`verifier ${k}: byte ${h.offset + i} of source ${r.tag} is wrong`);
      }
      verified += payload.length;
      if (h.flags & 1) c.send({ t: 'have', cid: r.src.manifest.cid, chunks: [h.chunk] });
    };
    c.onMessage = (h) => {
      if ((h.t === 'done' || h.t === 'error') && typeof h.id === 'number') reqs.get(h.id)?.end(h);
    };
    let id = 1 + k * 1_000_000;
    while (live()) {
      const batch: Promise<unknown>[] = [];
      const ids: number[] = [];
      for (let n = 1 + Math.floor(Math.random() * 4); n > 0; n--) {
        const { s, tag } = pick([...byCid.values()]);
        const chunks = Math.ceil(s.manifest.size / s.manifest.chunkBytes);
        const from = Math.floor(Math.random() * chunks);
        const to = Math.min(chunks, from + 1 + Math.floor(Math.random() * 4));
        const rid = id++;
        batch.push(new Promise((end) => reqs.set(rid, { src: s, tag, from, to, end })));
        ids.push(rid);
        c.send({ t: 'get', id: rid, cid: s.manifest.cid, from, to });
      }
      if (Math.random() < 0.4) {
        await sleep(Math.random() * 5);
        const rid = pick(ids);
        c.send({ t: 'cancel', id: rid });
        cancels++;
        reqs.get(rid)!.end('cancelled');
      }
      for (const [i, p] of batch.entries()) {
        const end = await Promise.race([p, sleep(15_000).then(() => null)]);
        if (end === null) stalls.push(`verifier ${k}: request ${ids[i]} unanswered 15 s`);
        else served++;
      }
    }
    if (c.socket.destroyed) stalls.push(`verifier ${k} was closed`);
    c.socket.destroy();
  };
  // closers: the whole of a big source, closed at a random moment (mostly mid-piece)
  const closer = async () => {
    while (live()) {
      const c = client();
      const { s } = pick([...byCid.values()].slice(0, 2));
      let got = 0;
      const at = Math.random() * 3 * MiB;
      c.onPacket = (_h, p) => {
        got += p.length;
        if (got >= at) c.socket.destroy();
      };
      c.send({ t: 'get', id: 1, cid: s.manifest.cid, from: 0, to: 24 });
      await Promise.race([new Promise((r) => c.socket.once('close', r)), sleep(1_000)]);
      c.socket.destroy();
    }
  };
  // non-readers: hold their buffers a while, then go
  const nonReader = async () => {
    while (live()) {
      const c = client(false);
      for (let i = 0; i < 30; i++) c.send({ t: 'get', id: i + 1, cid: srcs[2]!.manifest.cid, from: 0, to: 1 });
      c.send({ t: 'get', id: 99, cid: srcs[0]!.manifest.cid, from: 0, to: 24 });
      await sleep(300 + Math.random() * 700);
      c.socket.destroy();
    }
  };
  const dropper = async () => {
    while (live()) {
      const c = client();
      c.send({ t: 'get', id: 1, cid: pick(srcs).manifest.cid, from: 0, to: 1 });
      await sleep(Math.random() * 3);
      c.socket.destroy();
    }
  };
  // one long-lived connection that cancels again and again, then must still be served
  const canceller = async () => {
    const c = client();
    const cid = srcs[0]!.manifest.cid;
    let n = 0;
    let done: ((h: unknown) => void) | null = null;
    c.onMessage = (h) => h.id === 0 && (h.t === 'done' || h.t === 'error') && done?.(h);
    for (let id = 1; live(); id++, n++) {
      c.send({ t: 'get', id, cid, from: 0, to: 24 });
      await sleep(Math.random() * 4);
      c.send({ t: 'cancel', id });
    }
    const last = await new Promise((r) => {
      done = r;
      c.send({ t: 'get', id: 0, cid: srcs[2]!.manifest.cid, from: 0, to: 1 });
      setTimeout(() => r(null), 10_000);
    });
    c.socket.destroy();
    return { n, last };
  };

  const jobs: Promise<unknown>[] = [];
  for (let k = 0; k < 6; k++) jobs.push(verifier(k));
  for (let k = 0; k < 4; k++) jobs.push(closer());
  for (let k = 0; k < 3; k++) jobs.push(nonReader());
  for (let k = 0; k < 2; k++) jobs.push(dropper());
  const canc = canceller();
  await Promise.all(jobs);
  const { n, last } = await canc;
  all.forEach((s) => s.destroy());
  // everything in flight lands: reads end, writes are called back
  for (let i = 0; i < 100 && (lent.size > 0 || pendingFills > 0); i++) await sleep(50);
  t.comment(`still lent ${lent.size}, writing ${[...writing.values()].filter(Boolean).length}, pending fills ${pendingFills}; verified ${(verified / MiB).toFixed(0)} MiB, ${served} requests answered, ${cancels} cancels, ${takes} buffers lent, arenas made ${sendBuffers.made}, idle ${sendBuffers.idle}`);
  t.same(wrong.slice(0, 5), [], 'every byte every verifier got was its own source\'s, at its offset');
  t.same(stalls.slice(0, 5), [], 'every verifier was answered throughout');
  t.same(violations.slice(0, 5), [], 'no buffer was touched after it went back, or lent while in use');
  t.equal(doubleGives, 0, 'no buffer was given back twice');
  t.ok(last && (last as { t: string }).t === 'done', `a connection that cancelled ${n} requests is still served`);
  t.equal(lent.size, 0, 'every lent buffer came back once its connection was gone');
  t.ok(verified > 10 * MiB, 'the verifiers were served');
});

t.test('a client that never reads pins buffers the size of its pieces, not 1 MiB ones', async (t) => {
  const small = source(4, 60_000);
  const index: SourceIndex = { list: () => ({ files: [] }), stat: () => undefined, byCid: (c) => (c === small.manifest.cid ? small : undefined), openByName: async () => undefined };
  const server = new PeerServer(index, { uploadSlots: 0 });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close({ graceful: false }));
  const frames: Buffer[] = [helloMessage({ peer: newPeerId(), agent: 'review/1' })].map((h) => encodeFrameBuffer(h));
  for (let i = 0; i < 400; i++) frames.push(encodeFrameBuffer({ t: 'get', id: i + 1, cid: small.manifest.cid, from: 0, to: 1 }));
  const socks: net.Socket[] = [];
  t.teardown(() => socks.forEach((s) => s.destroy()));
  for (let i = 0; i < 10; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    s.pause(); // never reads
    s.write(Buffer.concat(frames));
    socks.push(s);
  }
  // until the socket buffers are full and every connection holds what it can
  let held = 0;
  for (let i = 0, last = -1; i < 100 && held !== last; i++) {
    last = held;
    await new Promise((r) => setTimeout(r, 100));
    held = [...lent].reduce((n, b) => n + b.bytes.length, 0);
  }
  t.ok(lent.size >= 10, `the non-readers hold ${lent.size} buffers`);
  t.ok(held <= 10 * 4 * 70_000, `${(held / MiB).toFixed(1)} MiB of buffers held by 10 non-readers of a 60 KB file (each was a 1 MiB buffer before)`);
});
