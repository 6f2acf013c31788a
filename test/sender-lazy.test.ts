/**
 * Hostile re-check of the data path's cost per request (lib/peer/sender.ts): a `get` for the
 * whole of a big file planned every piece of the range before the first byte went out (a million
 * pieces for 65,536 chunks of 16 MiB: ~170 ms of CPU and ~50 MB of garbage), even when a `cancel`
 * followed in the same write: ~140 bytes from a client for that. Pieces are now made as they are
 * sent. An in-memory source (no disk), a server and a raw client on 127.0.0.1.
 */
import t from 'tap';
import { makeManifest } from '../lib/manifest.js';
import { encodeFrameBuffer } from '../lib/protocol/frame.js';
import type { SourceReader } from '../lib/peer/source.js';
import { rawClient } from './helpers/raw-client.js';
import { memoryServer } from './helpers/memory-server.js';

t.test('a get for every chunk of a huge file, cancelled at once, costs about what a one-chunk get does', async (t) => {
  const chunkBytes = 16 << 20;
  const chunks = 65_536;
  const m = makeManifest(chunks * chunkBytes, chunkBytes, Buffer.alloc(chunks * 32, 1));
  const data = Buffer.alloc(256 << 10, 7);
  const reader: SourceReader = {
    read: async (buf, at, length) => data.copy(buf, at, 0, Math.min(length, data.length)),
    checkUnchanged() {},
    close: async () => {},
  };
  const { port } = await memoryServer(t, m, reader);
  const c = await rawClient(t, port);
  await c.waitFor((h) => h.t === 'hello', 3_000);
  const PAIRS = 20;
  const cpu = process.cpuUsage();
  for (let i = 1; i <= PAIRS; i++) {
    // one pair at a time (a request cancelled while queued is skipped, never planned), each
    // followed by a probe: the session answers in order, so the pair was handled when it answers
    const probe = 1_000 + i;
    c.socket.write(Buffer.concat([encodeFrameBuffer({ t: 'get', id: i, cid: m.cid, from: 0, to: chunks }), encodeFrameBuffer({ t: 'cancel', id: i }), encodeFrameBuffer({ t: 'stat', id: probe, name: 'no-such-file' })]));
    t.ok(await c.waitFor((h) => h.id === probe, 10_000), `pair ${i} handled`);
    await new Promise((r) => setTimeout(r, 5)); // its send starts (and is planned) after the probe's answer
  }
  await new Promise((r) => setTimeout(r, 100)); // the last cancelled send winds down
  const used = process.cpuUsage(cpu);
  const perPair = (used.user + used.system) / 1000 / PAIRS;
  t.ok(perPair < 20, `${perPair.toFixed(2)} ms of CPU per get+cancel pair (the whole range planned first: ~170 ms)`);
});
