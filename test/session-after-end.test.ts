/**
 * Hostile review: a session ended while handling one frame (a sync refusal ends it from inside
 * handle()) still handles the frames that came in the same read. An `interest` there joins the
 * requester counts (requester-chunks.ts, new) and the spreads AFTER destroy() ran leave(): the
 * entries, and through the spreads' `show` callback the whole PeerSession, stay for ever. One
 * write per connection: hello, sync-proof without sync-auth, interest. 127.0.0.x only.
 */
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import net from 'node:net';
import { once } from 'node:events';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { encodeFrameBuffer } from '../lib/protocol/frame.js';
import { helloMessage } from '../lib/protocol/messages.js';
import { newPeerId } from '../lib/net/identity.js';
import type { PeerServer } from '../lib/peer/server.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer } from './helpers/sync-peers.js';

t.test('interest after a sync refusal in the same read: requester counts and spreads outlive the session', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'f.bin'), Buffer.alloc(3 << 20, 9));
  const p = await syncPeer(t, dir); // an open sync peer (--open)
  const server = (p.node as unknown as { server: PeerServer }).server;
  const cid = p.node.library.stat('f.bin')!.cid;
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const CONNS = 200;
  for (let i = 0; i < CONNS; i++) {
    const s = net.connect({ host: '127.0.0.1', port: p.node.port, localAddress: `127.0.0.${2 + (i % 10)}` });
    s.on('error', () => {});
    t.teardown(() => s.destroy());
    await once(s, 'connect');
    s.write(Buffer.concat([
      encodeFrameBuffer(helloMessage({ peer: newPeerId(), agent: 'leak/1' })),
      encodeFrameBuffer({ t: 'sync-proof', id: 1, proof: '0'.repeat(64) }),
      encodeFrameBuffer({ t: 'interest', cid }),
    ]));
    s.resume();
    await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 3_000))]);
  }
  await new Promise((r) => setTimeout(r, 200));
  gc();
  t.comment(`heap kept: ~${((process.memoryUsage().heapUsed - heap0) / CONNS / 1024).toFixed(1)} KiB per refused connection`);
  const live = server.usage().connections;
  const req = server.requesters;
  const shows = (server.spreads as unknown as { shows: Map<number, unknown> }).shows;
  t.comment(`after ${CONNS} refused connections: ${live} live connections, ${req.sessions()} sessions in requester counts, ${shows.size} in spreads, holders(chunk 0) = ${server.requesters.holders(cid, 0)}`);
  t.equal(live, 0, 'every connection ended');
  t.equal(req.sessions(), 0, 'no ended session is left in the requester counts');
  t.equal(shows.size, 0, 'no ended session is left in the spreads (each holds its PeerSession through `show`)');
});
