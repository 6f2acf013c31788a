/**
 * The peer fetcher's chunk buffers (lib/download/peer-fetcher.ts): a request cancelled while one
 * of its packets is half received gives its buffer back to the pool shared by every connection of
 * a host; the rest of that packet, arriving later, must not be written into the buffer, which
 * another connection may already be filling with another peer's chunk. (This corrupted chunks
 * from honest peers in a flash crowd: the other peer was then blamed with a hash mismatch.)
 * Two scripted servers on 127.0.0.1 speak just enough of the protocol.
 */
import t from 'tap';
import net from 'node:net';
import { listenOnLoopback } from './helpers/attack.js';
import { PeerFetcher, type BufferSource } from '../lib/download/peer-fetcher.js';
import { FrameDecoder, encodeFrame, type Header } from '../lib/protocol/frame.js';
import { helloMessage } from '../lib/protocol/messages.js';
import { encodePacket } from '../lib/protocol/packet.js';
import { localHello } from '../lib/net/identity.js';
import type { FromPeerHost } from '../lib/download/thread-messages.js';

const CID = 'c'.repeat(64);
const CHUNK = 4096;
const SIZE = 2 * CHUNK;

/** A data frame (frame prefix with header length 0, packet header, payload), as the server sends it. */
function dataFrame(requestId: number, chunk: number, payload: Buffer): Buffer {
  return encodePacket({ flags: 1, requestId, chunk, offset: chunk * CHUNK }, payload);
}

interface Script {
  server: net.Server;
  port: number;
  /** Resolves with the socket and the first `get` it receives. */
  got: Promise<{ socket: net.Socket; get: Header }>;
}

async function scripted(t: { teardown(fn: () => unknown): void }): Promise<Script> {
  let resolveGot!: (v: { socket: net.Socket; get: Header }) => void;
  const got = new Promise<{ socket: net.Socket; get: Header }>((r) => (resolveGot = r));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const dec = new FrameDecoder({
      onMessage: (h) => {
        if (h.t === 'hello') for (const b of encodeFrame(helloMessage(localHello(null)))) socket.write(b);
        if (h.t === 'interest') for (const b of encodeFrame({ t: 'bitfield', cid: CID, have: Buffer.from([0b11]).toString('base64'), complete: true })) socket.write(b);
        if (h.t === 'get') resolveGot({ socket, get: h });
      },
      onPacket: () => {},
    });
    socket.on('data', (d) => dec.push(d));
  });
  return { server, port: await listenOnLoopback(t, server, sockets), got };
}

t.test('a cancelled half-received packet never writes into a buffer another connection took', async (t) => {
  // one buffer pool for both connections, last released first out: the freed buffer is reused at once
  const free: Uint8Array[] = [];
  const buffers: BufferSource = { acquire: (n) => free.pop() ?? new Uint8Array(n), release: (b) => void free.push(b) };
  const chunks: { peer: number; chunk: number; bytes: Uint8Array }[] = [];
  const post = (m: FromPeerHost) => {
    if (m.type === 'chunk') chunks.push({ peer: m.peerId, chunk: m.chunk, bytes: m.bytes.subarray(0, m.length) });
  };
  const a = await scripted(t);
  const b = await scripted(t);
  const fa = new PeerFetcher(1, '127.0.0.1', a.port, CID, 2, localHello(null), new Uint8Array(1), buffers, post);
  const fb = new PeerFetcher(2, '127.0.0.1', b.port, CID, 2, localHello(null), new Uint8Array(1), buffers, post);
  t.teardown(() => (fa.destroy(), fb.destroy()));
  await Promise.all([fa.connect(), fb.connect()]);

  fa.get(1, CID, 0, 1, SIZE, CHUNK);
  const { socket: sa } = await a.got;
  // peer a: the frame of chunk 0 and half of its payload, then nothing for now
  const stale = dataFrame(1, 0, Buffer.alloc(CHUNK, 0xaa));
  const half = 8 + 28 + CHUNK / 2;
  sa.write(stale.subarray(0, half));
  const deadline = Date.now() + 5_000;
  while (fa.takeBytes().n === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  // the coordinator gives chunk 0 to peer b instead: a's request is cancelled mid-packet
  fa.cancel(1);
  t.equal(free.length, 1, "a's buffer went back to the pool");
  fb.get(1, CID, 0, 1, SIZE, CHUNK);
  const { socket: sb } = await b.got;
  // peer b: the whole chunk, honest bytes
  const honest = Buffer.alloc(CHUNK, 0x55);
  sb.write(dataFrame(1, 0, honest));
  while (!chunks.some((c) => c.peer === 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  // ... and only now the rest of a's stale packet
  sa.write(stale.subarray(half));
  await new Promise((r) => setTimeout(r, 100));
  const fromB = chunks.find((c) => c.peer === 2);
  t.ok(fromB, "b's chunk arrived");
  t.ok(Buffer.from(fromB!.bytes).equals(honest), "b's chunk holds b's bytes, untouched by a's late packet");
  t.notOk(chunks.some((c) => c.peer === 1), 'nothing from the cancelled request was handed up');
});
