/**
 * The serving read buffers (lib/peer/send-buffers.ts): one pool per thread, a buffer lent per
 * piece and given back when the socket took it. A client that connects, asks for one chunk and
 * closes, again and again, made the server a new 4 MiB wasm memory each time (~45% of its CPU in
 * garbage collection, ~2.4 ms a connection measured with `swarm serve`); now it reuses a few.
 * In-memory source, a PeerServer and raw clients on 127.0.0.1.
 */
import t from 'tap';
import { SendBufferPool } from '../lib/peer/send-buffers.js';
import { makeManifest } from '../lib/manifest.js';
import type { SourceReader } from '../lib/peer/source.js';
import { rawClient } from './helpers/raw-client.js';
import { memoryServer } from './helpers/memory-server.js';

t.test('the pool: distinct buffers, each given back once, a bounded number kept', async (t) => {
  const pool = new SendBufferPool(1000, 2);
  const taken = Array.from({ length: 8 }, () => pool.take());
  t.equal(new Set(taken.map((b) => b.bytes)).size, 8, 'distinct buffers');
  for (const [i, a] of taken.entries()) {
    for (const b of taken.slice(i + 1)) {
      const overlap = a.bytes.buffer === b.bytes.buffer && a.bytes.byteOffset < b.bytes.byteOffset + b.bytes.length && b.bytes.byteOffset < a.bytes.byteOffset + a.bytes.length;
      t.notOk(overlap, 'no two buffers share a byte');
    }
    t.equal(a.bytes.length, 1000);
  }
  t.equal(pool.made, 8, 'one made for each (none kept yet)');
  t.ok(taken.every((b) => !b.arena || b.arena.owns(b.bytes)), 'each in its own arena (summed where it lies)');
  t.equal(new Set(taken.map((b) => b.bytes.buffer)).size, 8, 'no two share a memory: one kept pins only itself');
  t.equal(pool.idle, 0, 'none left unlent');
  t.ok(pool.give(taken[0]!), 'given back');
  t.notOk(pool.give(taken[0]!), 'a second give of the same buffer is refused (it would go to two connections)');
  t.notOk(pool.give({ bytes: Buffer.alloc(1000), arena: null }), 'a buffer it never lent is refused');
  for (const b of taken.slice(1)) pool.give(b);
  t.equal(pool.idle, 2, 'only keepFree buffers are kept');
  const again = pool.take();
  t.ok(taken.includes(again), 'a kept buffer is lent again');
});

t.test('several sizes: a piece takes the smallest buffer that holds it', async (t) => {
  const pool = new SendBufferPool([4000, 100, 1000]);
  t.same(pool.sizes, [100, 1000, 4000]);
  t.equal(pool.take(1).bytes.length, 100);
  t.equal(pool.take(100).bytes.length, 100);
  t.equal(pool.take(101).bytes.length, 1000);
  t.equal(pool.take(4000).bytes.length, 4000);
  t.equal(pool.take().bytes.length, 4000, 'the largest by default');
  const b = pool.take(500);
  const idle = pool.idle;
  t.ok(pool.give(b));
  t.equal(pool.idle, idle + 1);
  t.equal(pool.take(900), b, 'given back to its own size');
});

t.test('a client that reconnects for one chunk at a time costs the server no new memory each time', async (t) => {
  const chunkBytes = 64 << 10;
  const chunks = 4;
  const m = makeManifest(chunks * chunkBytes, chunkBytes, Buffer.alloc(chunks * 32, 1));
  const reader: SourceReader = { read: async (buf, at, length) => (buf.fill(9, at, at + length), length), checkUnchanged() {}, close: async () => {} };
  const { port } = await memoryServer(t, m, reader);
  // count the wasm memories made while the clients come and go (checksum-wasm.ts's arenas)
  const Real = WebAssembly.Memory;
  let memories = 0;
  (WebAssembly as { Memory: unknown }).Memory = class extends Real {
    constructor(d: WebAssembly.MemoryDescriptor) {
      super(d);
      memories++;
    }
  };
  t.teardown(() => void ((WebAssembly as { Memory: unknown }).Memory = Real));
  const CONNECTIONS = 100;
  let served = 0;
  for (let i = 0; i < CONNECTIONS; i++) {
    const c = await rawClient(t, port);
    let bytes = 0;
    c.onChunk = () => bytes++;
    c.send({ t: 'get', id: 1, cid: m.cid, from: i % chunks, to: (i % chunks) + 1 });
    if ((await c.waitFor((h) => h.id === 1 && h.t === 'done', 5_000)) && bytes === 1) served++;
    c.close();
  }
  t.equal(served, CONNECTIONS, 'every connection got its chunk');
  t.ok(memories <= 2, `${memories} wasm memories made for ${CONNECTIONS} connections (one each before)`);
});
