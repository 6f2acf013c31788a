/**
 * Fake "open folder members" for the sync dial tests: listeners that say hello (after `helloMs`)
 * and answer every index read with an empty index, or nothing (`silent`). Counted: connections
 * taken, and open now. Closed at teardown.
 */
import net from 'node:net';
import { FrameDecoder, encodeFrame, type Header } from '../../lib/protocol/frame.js';
import { PROTOCOL_VERSION } from '../../lib/protocol/messages.js';
import { newPeerId } from '../../lib/net/identity.js';

type T = { teardown(fn: () => unknown): void };

export interface FakeMembers {
  ports: number[];
  /** Connections open now. */
  open(): number;
  /** Connections taken so far. */
  accepted(): number;
}

export async function fakeSyncMembers(t: T, n: number, o: { host?: string; helloMs?: number; silent?: boolean } = {}): Promise<FakeMembers> {
  const sockets = new Set<net.Socket>();
  const servers: net.Server[] = [];
  let accepted = 0;
  for (let i = 0; i < n; i++) {
    const id = newPeerId();
    const s = net.createServer((sock) => {
      accepted++;
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => {});
      const send = (h: Header) => encodeFrame(h).forEach((b) => sock.write(b));
      const hello = () => !sock.destroyed && send({ t: 'hello', v: PROTOCOL_VERSION, peer: id, agent: 'junk', caps: [] });
      const d = new FrameDecoder({
        onPacket() {},
        onMessage(h) {
          if (h.t === 'hello') (o.helloMs ? setTimeout(hello, o.helloMs) : hello());
          if (h.t === 'sync-index' && !o.silent) send({ t: 'sync-entries', id: h.id, entries: [], version: 0 });
        },
      });
      sock.on('data', (b: Buffer) => {
        try {
          d.push(b);
        } catch {
          sock.destroy();
        }
      });
    });
    await new Promise<void>((r) => s.listen(0, o.host ?? '127.0.0.1', r));
    servers.push(s);
  }
  t.teardown(async () => {
    for (const x of sockets) x.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });
  return { ports: servers.map((s) => (s.address() as net.AddressInfo).port), open: () => sockets.size, accepted: () => accepted };
}
