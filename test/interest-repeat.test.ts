/**
 * Hostile review: server CPU per `interest` message (a ~120-byte request) for a content of
 * MAX_CHUNKS chunks (a 64 GiB file), with the seeder's spreads on and off: Availability.setPeer
 * and Spread.join walk the content, and each repeated interest on one connection did it again
 * (933 µs a message); a repeat is now ignored.
 * A fake source index stands in for the 64 GiB file (nothing is read). 127.0.0.1 only.
 */
import t, { type Test } from 'tap';
import { PeerServer } from '../lib/peer/server.js';
import { makeManifest, type Manifest } from '../lib/manifest.js';
import { fullBitfield } from '../lib/scheduling/availability.js';
import { MAX_CHUNKS } from '../lib/constants.js';
import type { ChunkSource, SourceIndex } from '../lib/peer/source.js';
import { rawClient } from './helpers/raw-client.js';

const MiB = 1 << 20;

function bigSource(): { index: SourceIndex; m: Manifest } {
  const m = makeManifest(MAX_CHUNKS * MiB, MiB, Buffer.alloc(MAX_CHUNKS * 32, 1));
  const bits = fullBitfield(MAX_CHUNKS);
  const src: ChunkSource = { manifest: m, complete: true, has: () => true, bitfield: () => bits, open: () => Promise.reject(new Error('not read here')) };
  const index: SourceIndex = { list: () => ({ files: [] }), stat: () => undefined, byCid: (c) => (c === m.cid ? src : undefined), openByName: async () => undefined };
  return { index, m };
}

/**
 * N `interest`s for the content on one connection, then a request that is answered (a manifest of
 * an unknown content: an error): CPU per interest, the client's share included. Only the first
 * interest is taken (one per content and connection); the repeats must cost next to nothing.
 */
async function perInterest(t: Test, spread: boolean, N: number): Promise<{ us: number; bitfields: number }> {
  const { index, m } = bigSource();
  const server = new PeerServer(index, { spread });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close({ graceful: false } as never));
  const c = await rawClient(t, port);
  await c.waitFor((h) => h.t === 'hello', 3_000);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < N; i++) c.send({ t: 'interest', cid: m.cid });
  c.send({ t: 'manifest', id: 7, cid: 'f'.repeat(64) });
  await c.waitFor((h) => h.t === 'error' && h.id === 7, 20_000);
  const cpu = process.cpuUsage(cpu0);
  const bitfields = c.messages.filter((h) => h.t === 'bitfield').length;
  const us = (cpu.user + cpu.system) / N;
  t.comment(`spreads ${spread ? 'on' : 'off'}: ${N} interests, ${bitfields} answered, ${us.toFixed(0)} µs CPU each (client included)`);
  c.close();
  return { us, bitfields };
}

t.test('interests repeated on one connection for a 65,536-chunk content are ignored and cheap', async (t) => {
  for (const spread of [false, true]) {
    const r = await perInterest(t, spread, 400);
    t.equal(r.bitfields, 1, `spreads ${spread ? 'on' : 'off'}: only the first interest is answered`);
    t.ok(r.us < 300, `spreads ${spread ? 'on' : 'off'}: ${r.us.toFixed(0)} µs per interest (< 300 µs)`);
  }
});
