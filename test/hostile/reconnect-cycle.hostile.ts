/**
 * Upload slots against a client that reconnects to stay new (hostile review 31), over real
 * sockets on 127.0.0.1: an honest downloader that acknowledges every chunk fetches one chunk at a
 * time from a PeerServer (4 slots, 5 s acknowledgement timeout), alone and then while an attacker
 * opens one connection a second from 127.0.0.2, asks each for one chunk, never acknowledges and
 * closes it after 5.05 s. Every fresh session used to count as one that acknowledges until its
 * chunk timed out, so about five of them held the four slots for good: the honest downloader got
 * 0 chunks a second. Sessions that have acknowledged nothing now share one slot.
 * Bounded: ~20 s, every socket closed at teardown, the server closed.
 */
import t from 'tap';
import { makeManifest } from '../../lib/manifest.js';
import type { SourceReader } from '../../lib/peer/source.js';
import { rawClient } from '../helpers/raw-client.js';
import { memoryServer } from '../helpers/memory-server.js';

const CHUNK_BYTES = 64 << 10;
const CHUNKS = 4096;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a client reconnecting every second to stay new does not starve an honest downloader', async (t) => {
  const m = makeManifest(CHUNKS * CHUNK_BYTES, CHUNK_BYTES, Buffer.alloc(CHUNKS * 32, 1));
  const reader: SourceReader = { read: async (_buf, _at, length) => length, checkUnchanged() {}, close: async () => {} };
  const { server, port } = await memoryServer(t, m, reader);

  const d = await rawClient(t, port);
  t.ok(await d.waitFor((h) => h.t === 'hello', 3_000), 'the honest downloader is greeted');
  let got = 0;
  let stop = false;
  const honest = (async () => {
    for (let id = 1; !stop; id++) {
      const c = id % CHUNKS;
      d.send({ t: 'get', id, cid: m.cid, from: c, to: c + 1 });
      const r = await d.waitFor((h) => h.id === id && (h.t === 'done' || h.t === 'error'), 10_000);
      if (r?.t !== 'done') continue;
      d.send({ t: 'have', cid: m.cid, chunks: [c] });
      got++;
      if (d.messages.length > 1000) d.messages.length = 0;
    }
  })();
  t.teardown(() => {
    stop = true;
  });

  await sleep(3_000);
  const alone = got / 3;
  got = 0;
  let counted = 0;
  const attackStart = Date.now();
  for (let k = 0; Date.now() - attackStart < 13_000; k++) {
    const a = await rawClient(t, port, '127.0.0.2');
    a.send({ t: 'get', id: 1, cid: m.cid, from: 100 + (k % 1000), to: 101 + (k % 1000) });
    setTimeout(() => a.close(), 5_050).unref();
    if (k === 5) {
      got = 0; // from the attack's sixth second on: about five sessions hold a chunk each
      counted = Date.now();
    }
    await sleep(1_000);
  }
  const attacked = got / ((Date.now() - counted) / 1000);
  stop = true;
  await Promise.race([honest, sleep(11_000)]);
  t.comment(`HOSTILE reconnect-cycle: honest downloader alone ${alone.toFixed(0)} chunks/s, under the attack ${attacked.toFixed(1)} chunks/s; the server granted ${server.slots!.counters.granted} chunks, ${server.slots!.counters.timedOut} timed out`);
  t.ok(alone > 20, `the honest downloader alone gets chunks (${alone.toFixed(0)}/s)`);
  t.ok(attacked >= alone * 0.3, `under the attack it keeps at least 30% of its pace (${attacked.toFixed(1)} against ${alone.toFixed(0)} chunks/s; 0 before)`);
});
