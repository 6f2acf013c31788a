/**
 * A raw protocol-2 client for tests that play a hostile peer: connects to 127.0.0.x only, says hello,
 * sends whatever the test wants, collects replies and counts packet payload bytes per chunk.
 * Every client is closed at the test's teardown.
 */
import net from 'node:net';
import { once } from 'node:events';
import { encodeFrameBuffer, FrameDecoder, type Header } from '../../lib/protocol/frame.js';
import { helloMessage } from '../../lib/protocol/messages.js';
import { newPeerId } from '../../lib/net/identity.js';

export interface RawClient {
  socket: net.Socket;
  messages: Header[];
  send(h: Header): void;
  /** Resolves with the first message `pred` accepts (already received or to come), or null after `ms`. */
  waitFor(pred: (h: Header) => boolean, ms: number): Promise<Header | null>;
  /** Whole chunks received (FLAG_LAST_IN_CHUNK seen), by request id. */
  onChunk: ((reqId: number, chunk: number) => void) | null;
  close(): void;
}

export async function rawClient(t: { teardown(fn: () => unknown): void }, port: number, localAddress = '127.0.0.1'): Promise<RawClient> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const messages: Header[] = [];
  const waiters = new Set<{ pred: (h: Header) => boolean; resolve: (h: Header | null) => void }>();
  const c: RawClient = {
    socket,
    messages,
    onChunk: null,
    send: (h) => void socket.write(encodeFrameBuffer(h)),
    waitFor: (pred, ms) => {
      const hit = messages.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve) => {
        const w = { pred, resolve };
        waiters.add(w);
        setTimeout(() => waiters.delete(w) && resolve(null), ms).unref();
      });
    },
    close: () => socket.destroy(),
  };
  const decoder = new FrameDecoder({
    onMessage(h) {
      messages.push(h);
      if (messages.length > 10_000) messages.splice(0, 5_000);
      for (const w of waiters) if (w.pred(h)) waiters.delete(w), w.resolve(h);
    },
    onPacket(h) {
      if (h.flags & 1) c.onChunk?.(h.requestId, h.chunk);
    },
  });
  socket.on('data', (d: Buffer) => {
    try {
      decoder.push(d);
    } catch {
      socket.destroy();
    }
  });
  socket.write(encodeFrameBuffer(helloMessage({ peer: newPeerId(), agent: 'raw-client/1' })));
  return c;
}
