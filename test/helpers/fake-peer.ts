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
 *   empty-done    answers every get with `done` at once plus a few junk bytes
 *   junk-drip     one real chunk per `dripMs`, and a flood of packets for requests never made
 *   silent        accepts the connection and never says anything (not even hello)
 * `stat` answers with `statAs` (name, mtime, cid) when given: a liar about what it holds.
 */
import net from 'node:net';
import { openSync, readSync, closeSync } from 'node:fs';
import { FrameDecoder, encodeFrame, type Header } from '../../lib/protocol/frame.js';
import { encodePacketHead, FLAG_LAST_IN_CHUNK } from '../../lib/protocol/packet.js';
import { chunksOf, type Manifest } from '../../lib/manifest.js';
import { PROTOCOL_VERSION } from '../../lib/protocol/messages.js';

export type FakeMode = 'honest' | 'bad-checksum' | 'wrong-bytes' | 'forge' | 'stall' | 'cut' | 'huge' | 'empty-done' | 'junk-drip' | 'silent';

export interface FakePeer {
  port: number;
  requests: number;
  connections: number;
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
}

export async function startFakePeer(file: string, m: Manifest, mode: FakeMode, o: FakeOptions = {}): Promise<FakePeer> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const state = { requests: 0, connections: 0 };
  const name = o.name ?? 'f.bin';
  const mtime = o.mtime ?? 1_700_000_000;
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (mode === 'silent') return;
    const send = (h: Header, body?: Uint8Array) => encodeFrame(h, body).forEach((b) => socket.write(b));
    const decoder = new FrameDecoder({
      onPacket() {},
      onMessage(h) {
        if (h.t === 'hello') send({ t: 'hello', v: PROTOCOL_VERSION, peer: 'fa4efa4efa4efa4e', agent: `fake/${mode}`, caps: [] });
        if (h.t === 'list') send({ t: 'files', id: h.id, files: [{ name, size: m.size, mtime, kind: 'other', cid: m.cid }] });
        if (h.t === 'stat') {
          if (h.name !== name && !o.statAs) send({ t: 'error', id: h.id, code: 'SWARM_ERR_NOT_FOUND', message: 'no such file' });
          else send({ t: 'entry', id: h.id, name: h.name, size: m.size, mtime, kind: 'other', cid: m.cid, ...o.statAs });
        }
        if (h.t === 'manifest') {
          const mf = o.manifestAs ?? m;
          send({ t: 'manifest-ok', id: h.id, cid: h.cid, size: mf.size, chunkBytes: mf.chunkBytes, chunks: chunksOf(mf) }, mf.hashes);
        }
        if (h.t === 'get') {
          state.requests++;
          sendRange(socket, file, m, mode, o, h.id as number, h.from as number, h.to as number, timers);
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
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
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
    socket.write(Buffer.concat([...encodeFrame({ t: 'done', id }), Buffer.alloc(0)]));
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
    const real = readChunk(file, m, c);
    const bytes = mode === 'forge' && o.forge ? o.forge(c, real) : real;
    if (!writeChunk(socket, m, id, c, bytes, mode)) return;
  }
  socket.write(Buffer.concat(encodeFrame({ t: 'done', id })));
}
