/**
 * Read coalescing of streaming connections (lib/net/framed-client.ts): a peer that trickles small
 * frames (a slow link delivering one segment at a time) is read a few frames at a time, not once
 * per frame, and nothing is lost: every frame arrives in order, including those that arrive while
 * the socket is stopped, and an end while stopped still closes the connection.
 */
import t from 'tap';
import net from 'node:net';
import { listenOnLoopback } from './helpers/attack.js';
import { FramedClient, COALESCE_BYTES, COALESCE_MS } from '../lib/net/framed-client.js';
import { FrameDecoder, encodeFrameBuffer } from '../lib/protocol/frame.js';
import { helloMessage } from '../lib/protocol/messages.js';
import { localHello } from '../lib/net/identity.js';

const CID = 'c'.repeat(64);
const FRAMES = 300;

/** A server that answers hello, then sends FRAMES `have` messages one per millisecond, then ends. */
async function trickler(t: { teardown(fn: () => unknown): void }): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const dec = new FrameDecoder({
      onMessage: (h) => {
        if (h.t !== 'hello') return;
        socket.write(encodeFrameBuffer(helloMessage(localHello(null))));
        let sent = 0;
        const timer = setInterval(() => {
          socket.write(encodeFrameBuffer({ t: 'have', cid: CID, chunks: [sent] }));
          if (++sent === FRAMES) {
            clearInterval(timer);
            socket.end();
          }
        }, 1);
        socket.once('close', () => clearInterval(timer));
      },
      onPacket: () => {},
    });
    socket.on('data', (d) => dec.push(d));
  });
  return listenOnLoopback(t, server, sockets);
}

/** Connects to a trickler and collects its frames; resolves with them and the reads it took. */
async function collect(t: { teardown(fn: () => unknown): void }, coalesceMs: number): Promise<{ got: number[]; reads: number }> {
  const port = await trickler(t);
  const got: number[] = [];
  let closed!: () => void;
  const ended = new Promise<void>((r) => (closed = r));
  const client = new FramedClient('127.0.0.1', port, {
    side: 'peerReply',
    coalesceMs,
    handler: {
      onPacketStart: () => {},
      onPacketData: () => {},
      onPacketEnd: () => {},
      onMessage: (m) => {
        if (m.t === 'have') got.push(...(m.chunks as number[]));
      },
      onClose: () => closed(),
    },
  });
  t.teardown(() => client.destroy());
  await client.connect();
  let timer!: NodeJS.Timeout;
  await Promise.race([ended, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('no end within 20 s')), 20_000)))]);
  clearTimeout(timer);
  return { got, reads: client.reads };
}

const ALL = Array.from({ length: FRAMES }, (_, i) => i);

t.test('small reads are coalesced and every frame arrives in order', async (t) => {
  t.ok(FRAMES * 60 < COALESCE_BYTES * 2, 'the frames are far below COALESCE_BYTES: each is a small read');
  const plain = await collect(t, 0);
  t.same(plain.got, ALL, `without coalescing: all ${FRAMES} frames, in order`);
  const batched = await collect(t, 10);
  t.same(batched.got, ALL, `stopped 10 ms after each small read: all ${FRAMES} frames, in order, and the end`);
  t.ok(batched.reads * 2 < plain.reads, `fewer reads (${batched.reads} against ${plain.reads} without coalescing)`);
  const dflt = await collect(t, COALESCE_MS);
  t.same(dflt.got, ALL, `default delay (${COALESCE_MS} ms): all frames`);
});
