/**
 * A peer that misbehaves on purpose, written as a hostile peer would after reading our code. It
 * speaks protocol 2 (hello, stat, manifest by content id, get by content id) and, for `get`, does
 * what its mode says:
 *   honest        the real bytes
 *   bad-checksum  payload byte flipped after the checksum was computed
 *   wrong-bytes   wrong bytes with a valid checksum (only the chunk hash can tell)
 *   forge         the bytes `forge(chunk, real)` returns, with valid checksums
 *   stall         accepts requests and sends nothing
 *   cut           sends half a packet and closes
 *   huge          declares a 4 GiB frame
 *   empty-done    answers every get with `done` at once plus a small packet for no request
 *   junk-drip     one real chunk per `dripMs`, and a flood of packets for requests never made
 *   silent        accepts the connection and never says anything (not even hello)
 *   trickle       real bytes of the requested chunks, `trickleBytesPerSec` of them, in small packets
 *                 every `trickleEveryMs`
 *   refuse        answers every get with the error `getError`
 *   busy          answers every get with `busy`, then again every `busyEveryMs` (default 2 s, as a
 *                 real queue does), and never sends a byte; with `busyDripMs`, one real chunk of
 *                 the oldest request it holds every `busyDripMs` (a liar whose `busy` hides a trickle)
 * `has` makes its bitfield claim only those chunks (an honest partial holder); `coldStartMs` holds
 * back its first `get` (a cold disk: the first answer is late, the later ones are not).
 * `stat` answers with `statAs` (name, mtime, cid) when given: a liar about what it holds; with
 * `statError` it answers an error instead. `list` answers `listAs` when given (hostile names).
 *
 * `startFakeTracker` is the same for the tracker protocol: it answers `who-has` and `dir` with
 * whatever the test hands it (poisoned directories). `registerFake` announces a fake peer to a
 * real tracker, as any client can.
 */
import net from 'node:net';
import { openSync, readSync, closeSync } from 'node:fs';
import { FrameDecoder, encodeFrame, type Header } from '../../lib/protocol/frame.js';
import { encodePacketHead, FLAG_LAST_IN_CHUNK } from '../../lib/protocol/packet.js';
import { chunksOf, type Manifest } from '../../lib/manifest.js';
import { PROTOCOL_VERSION } from '../../lib/protocol/messages.js';
import { fullBitfield } from '../../lib/scheduling/availability.js';
import { newPeerId } from '../../lib/net/identity.js';
import { FramedClient } from '../../lib/net/framed-client.js';

export type FakeMode = 'honest' | 'bad-checksum' | 'wrong-bytes' | 'forge' | 'stall' | 'cut' | 'huge' | 'empty-done' | 'junk-drip' | 'silent' | 'trickle' | 'refuse' | 'busy';

export interface FakePeer {
  port: number;
  requests: number;
  connections: number;
  /** Chunks sent by a `busy` peer with `busyDripMs`. */
  dripped: number;
  close(): Promise<void>;
}

export interface FakeOptions {
  /** The name it shares the file under (default 'f.bin'). */
  name?: string;
  mtime?: number;
  /** For forge mode: the bytes to send for a chunk. */
  forge?: (chunk: number, real: Buffer) => Buffer;
  /** What `stat` claims (a liar); default the truth. */
  statAs?: { name?: string; mtime?: number; cid?: string; size?: number };
  /** A manifest to hand out instead of the real one (a liar). */
  manifestAs?: Manifest;
  dripMs?: number;
  /** For trickle mode: payload bytes per second (default 4096). */
  trickleBytesPerSec?: number;
  /** For trickle mode: one packet this often (default 100 ms), `trickleBytesPerSec` on average. */
  trickleEveryMs?: number;
  /** The chunks its bitfield claims (default every chunk). */
  has?: number[];
  /** The first `get` this fake is asked (on any connection) waits this long before its answer starts. */
  coldStartMs?: number;
  /** For busy mode: `busy` repeated this often (default 2000 ms). */
  busyEveryMs?: number;
  /** For busy mode: one real chunk of the oldest held request this often (default: never). */
  busyDripMs?: number;
  /** What `list` answers (default: the one file, truthfully). */
  listAs?: Record<string, unknown>[];
  /** `stat` answers this error instead of an entry. */
  statError?: { code: string; message: string };
  /** For refuse mode: the error every get is answered with. */
  getError?: { code: string; message: string };
  /** Hang up after sending this many chunks on a connection (a liar that leaves before its strikes add up). */
  closeAfterChunks?: number;
  /** What its bitfield says of itself (default true: a seeder); false poses as a partial holder with every chunk. */
  complete?: boolean;
}

/** Chunks sent per connection (closeAfterChunks). */
const chunksSent = new WeakMap<net.Socket, number>();

export async function startFakePeer(file: string, m: Manifest, mode: FakeMode, o: FakeOptions = {}): Promise<FakePeer> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const state = { requests: 0, connections: 0, dripped: 0 };
  let cold = (o.coldStartMs ?? 0) > 0;
  const name = o.name ?? 'f.bin';
  const mtime = o.mtime ?? 1_700_000_000;
  const fakeId = newPeerId();
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (mode === 'silent') return;
    const send = (h: Header, body?: Uint8Array) => encodeFrame(h, body).forEach((b) => socket.write(b));
    // busy mode: the requests it holds, oldest first, and its repeating `busy`
    const queue: { id: number; next: number; to: number }[] = [];
    let busyTimer: NodeJS.Timeout | undefined;
    const decoder = new FrameDecoder({
      onPacket() {},
      onMessage(h) {
        if (h.t === 'hello') send({ t: 'hello', v: PROTOCOL_VERSION, peer: fakeId, agent: `fake/${mode}`, caps: [] });
        // every fake claims the whole file (the liars lie about that too), unless `has` says otherwise
        if (h.t === 'interest' && h.cid === m.cid) send({ t: 'bitfield', cid: m.cid, have: Buffer.from(claimed(m, o.has)).toString('base64'), complete: o.has ? false : (o.complete ?? true) });
        if (h.t === 'list') send({ t: 'files', id: h.id, files: o.listAs ?? [{ name, size: m.size, mtime, kind: 'other', cid: m.cid }] });
        if (h.t === 'stat') {
          if (o.statError) send({ t: 'error', id: h.id, ...o.statError });
          else if (h.name !== name && !o.statAs) send({ t: 'error', id: h.id, code: 'SWARM_ERR_NOT_FOUND', message: 'no such file' });
          else send({ t: 'entry', id: h.id, name: h.name, size: m.size, mtime, kind: 'other', cid: m.cid, ...o.statAs });
        }
        if (h.t === 'manifest') {
          const mf = o.manifestAs ?? m;
          send({ t: 'manifest-ok', id: h.id, cid: h.cid, size: mf.size, chunkBytes: mf.chunkBytes, chunks: chunksOf(mf) }, mf.hashes);
        }
        if (h.t === 'cancel') {
          const i = queue.findIndex((r) => r.id === h.id);
          if (i >= 0) queue.splice(i, 1);
        }
        if (h.t === 'get') {
          state.requests++;
          if (mode === 'busy') {
            queue.push({ id: h.id as number, next: h.from as number, to: h.to as number });
            send({ t: 'busy', id: h.id });
            if (timers.has(busyTimer!)) return;
            busyTimer = setInterval(() => socket.destroyed || queue.forEach((r) => send({ t: 'busy', id: r.id })), o.busyEveryMs ?? 2_000);
            timers.add(busyTimer);
            if (o.busyDripMs) {
              const drip = setInterval(() => {
                const r = queue[0];
                if (!r || socket.destroyed) return;
                const c = r.next++;
                writeChunk(socket, m, r.id, c, readChunk(file, m, c), 'honest');
                state.dripped++;
                if (r.next < r.to) return;
                queue.shift();
                send({ t: 'done', id: r.id });
              }, o.busyDripMs);
              timers.add(drip);
            }
            return;
          }
          const go = () => sendRange(socket, file, m, mode, o, h.id as number, h.from as number, h.to as number, timers);
          if (!cold) return go();
          cold = false;
          const t = setTimeout(() => socket.destroyed || go(), o.coldStartMs);
          timers.add(t);
        }
      },
    });
    socket.on('data', (d: Buffer) => {
      try {
        decoder.push(d);
      } catch {
        socket.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    get requests() {
      return state.requests;
    },
    get connections() {
      return state.connections;
    },
    get dripped() {
      return state.dripped;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Its bitfield: every chunk, or only `has`. */
function claimed(m: Manifest, has: number[] | undefined): Uint8Array {
  if (!has) return fullBitfield(chunksOf(m));
  const bits = new Uint8Array(Math.ceil(chunksOf(m) / 8));
  for (const i of has) bits[i >> 3]! |= 1 << (i & 7);
  return bits;
}

function readChunk(file: string, m: Manifest, c: number): Buffer {
  const start = c * m.chunkBytes;
  const len = Math.min(m.chunkBytes, m.size - start);
  const buf = Buffer.alloc(len);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, len, start);
  } finally {
    closeSync(fd);
  }
  return buf;
}

function writeChunk(socket: net.Socket, m: Manifest, id: number, c: number, bytes: Buffer, mode: FakeMode): boolean {
  const start = c * m.chunkBytes;
  for (let at = 0; at < bytes.length; at += 65536) {
    const n = Math.min(65536, bytes.length - at);
    let payload = bytes.subarray(at, at + n);
    const flags = at + n >= bytes.length ? FLAG_LAST_IN_CHUNK : 0;
    if (mode === 'wrong-bytes') payload = Buffer.from(payload).fill(0x5a, 0, Math.min(n, 16));
    const head = encodePacketHead({ flags, requestId: id, chunk: c, offset: start + at }, payload);
    if (mode === 'bad-checksum') payload = Buffer.from(payload).fill(payload[0]! ^ 0xff, 0, 1);
    if (mode === 'cut') {
      socket.write(head);
      socket.end(payload.subarray(0, n >> 1));
      socket.destroy();
      return false;
    }
    socket.write(head);
    socket.write(payload);
  }
  return true;
}

function sendRange(socket: net.Socket, file: string, m: Manifest, mode: FakeMode, o: FakeOptions, id: number, from: number, to: number, timers: Set<NodeJS.Timeout>): void {
  if (mode === 'stall') return;
  if (mode === 'huge') {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(0, 0);
    p.writeUInt32BE(0xffffffff, 4);
    socket.write(p);
    return;
  }
  if (mode === 'empty-done') {
    // the done, then a few junk bytes: a valid packet for a request nobody made
    const junk = Buffer.alloc(16, 0x6a);
    socket.write(Buffer.concat([...encodeFrame({ t: 'done', id }), encodePacketHead({ flags: 0, requestId: 0x7ffffff0, chunk: from, offset: from * m.chunkBytes }, junk), junk]));
    return;
  }
  if (mode === 'refuse') {
    socket.write(Buffer.concat(encodeFrame({ t: 'error', id, ...(o.getError ?? { code: 'SWARM_ERR_NOT_FOUND', message: 'no such content' }) })));
    return;
  }
  if (mode === 'trickle') {
    // real bytes of live requests, slowly: never junk, never quite stalled, never a whole chunk soon
    const every = o.trickleEveryMs ?? 100;
    const perTick = Math.max(1, Math.floor(((o.trickleBytesPerSec ?? 4096) * every) / 1000));
    let c = from;
    let at = 0;
    let real = readChunk(file, m, c);
    const step = () => {
      if (socket.destroyed) return;
      const n = Math.min(perTick, real.length - at);
      const payload = real.subarray(at, at + n);
      const last = at + n >= real.length;
      socket.write(encodePacketHead({ flags: last ? FLAG_LAST_IN_CHUNK : 0, requestId: id, chunk: c, offset: c * m.chunkBytes + at }, payload));
      socket.write(payload);
      at += n;
      if (last) {
        if (++c >= to) return void socket.write(Buffer.concat(encodeFrame({ t: 'done', id })));
        at = 0;
        real = readChunk(file, m, c);
      }
      const t = setTimeout(step, every);
      timers.add(t);
    };
    step();
    return;
  }
  if (mode === 'junk-drip') {
    // one real chunk after dripMs; meanwhile packets for a request id nobody made
    const junk = Buffer.alloc(65536, 0x33);
    let sent = 0;
    const flood = () => {
      if (socket.destroyed || sent > 200) return;
      for (let i = 0; i < 16; i++) socket.write(Buffer.concat([encodePacketHead({ flags: 0, requestId: 0x7fff0000 + i, chunk: from, offset: from * m.chunkBytes }, junk), junk]));
      sent++;
      const t = setTimeout(flood, 20);
      timers.add(t);
    };
    flood();
    const t = setTimeout(() => {
      if (socket.destroyed) return;
      writeChunk(socket, m, id, from, readChunk(file, m, from), 'honest');
      for (let c = from + 1; c < to; c++) void c; // the rest never comes
    }, o.dripMs ?? 15_000);
    timers.add(t);
    return;
  }
  for (let c = from; c < to; c++) {
    if (socket.writableEnded || socket.destroyed) return; // it hung up (closeAfterChunks): nothing more
    const real = readChunk(file, m, c);
    const bytes = mode === 'forge' && o.forge ? o.forge(c, real) : real;
    if (!writeChunk(socket, m, id, c, bytes, mode)) return;
    const n = (chunksSent.get(socket) ?? 0) + 1;
    chunksSent.set(socket, n);
    if (o.closeAfterChunks !== undefined && n >= o.closeAfterChunks) {
      socket.end(); // flushes what was written, then hangs up
      return;
    }
  }
  socket.write(Buffer.concat(encodeFrame({ t: 'done', id })));
}

export interface FakeTracker {
  port: number;
  /** Requests by type, for assertions (`who-has`, `dir`...). */
  seen: Map<string, number>;
  close(): Promise<void>;
}

export interface FakeTrackerAnswers {
  /** The `versions` of a `holders` answer for a name (default: none). */
  versions?: (name: string) => unknown[];
  /** The `files` of `directory` answers, one object per page (the last has no `next`). */
  directory?: Record<string, unknown>[];
}

/**
 * A tracker that lies: it speaks protocol 2 and answers `who-has` and `dir` with what the test
 * gives it, unchecked (huge mtimes, invalid ports, duplicate holders, hostile names...).
 */
export async function startFakeTracker(a: FakeTrackerAnswers): Promise<FakeTracker> {
  const sockets = new Set<net.Socket>();
  const seen = new Map<string, number>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const send = (h: Header) => encodeFrame(h).forEach((b) => socket.write(b));
    const decoder = new FrameDecoder({
      onPacket() {},
      onMessage(h) {
        seen.set(h.t, (seen.get(h.t) ?? 0) + 1);
        if (h.t === 'hello') send({ t: 'hello', v: PROTOCOL_VERSION, peer: 'baadbaadbaadbaad', agent: 'fake-tracker', caps: [] });
        else if (h.t === 'who-has') send({ t: 'holders', id: h.id, name: h.name, versions: a.versions?.(h.name as string) ?? [] });
        else if (h.t === 'dir') {
          const pages = a.directory ?? [{}];
          const i = typeof h.after === 'string' ? Number(h.after) + 1 : 0;
          send({ t: 'directory', id: h.id, files: pages[i] ?? {}, ...(i + 1 < pages.length ? { next: String(i) } : {}) });
        } else if (typeof h.id === 'number') send({ t: 'ok', id: h.id });
      },
    });
    socket.on('data', (d: Buffer) => {
      try {
        decoder.push(d);
      } catch {
        socket.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * Announce `servingPort` as a holder of `files` to a real tracker, as any client can (a fake
 * peer, or an address where nothing answers). The registration lasts until `close()`.
 */
export async function registerFake(
  trackerPort: number,
  servingPort: number,
  /** `partial: true` registers it as a partial holder (a download in progress). */
  files: { name: string; mtime: number; size: number; cid: string; partial?: boolean }[],
  /** The address it registers from, which the tracker lists (the tracker sorts holders by it). */
  localAddress = '127.0.0.1',
): Promise<{ close(): void }> {
  const c = new FramedClient('127.0.0.1', trackerPort, { side: 'trackerReply', localAddress, hello: { peer: 'fa4efa4efa4efa4e', agent: 'fake', listen: servingPort } });
  await c.connect();
  await c.request({ t: 'register', port: servingPort, files }, 'ok');
  return { close: () => c.destroy() };
}
