import t from 'tap';
import { openSync, closeSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ThreadChunkPool } from '../lib/pool.js';
import { chunkHash } from '../lib/hashing.js';
import { WorkerPeerHost } from '../lib/download/peer-host.js';
import type { FromPeerHost } from '../lib/download/thread-messages.js';
import { serve } from '../lib/serve.js';
import { localHello } from '../lib/net/identity.js';
import { InlineChunkPool } from '../lib/pool.js';
import { MIN_CHUNK_BYTES } from '../lib/constants.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';

t.test('the pool takes a chunk by transfer and gives it back by transfer', async (t) => {
  const pool = new ThreadChunkPool(1);
  t.teardown(() => pool.destroy());
  const dir = tempDir(t);
  const fd = openSync(path.join(dir, 'out.bin'), 'w');
  t.teardown(() => closeSync(fd));
  const bytes = new Uint8Array(new ArrayBuffer(MIN_CHUNK_BYTES));
  bytes.set(randomBytes(prng(81), MIN_CHUNK_BYTES));
  const copy = Buffer.from(bytes);
  const r = await pool.verifyAndWrite({ fd, position: 0, bytes, length: bytes.length, expected: chunkHash(copy) });
  t.equal(bytes.byteLength, 0, 'the sender no longer holds the chunk (detached, not copied)');
  t.ok(r.ok);
  t.equal(r.bytes.byteLength, MIN_CHUNK_BYTES, 'the same memory came back for reuse');
  t.ok(Buffer.from(r.bytes).equals(copy));
  t.ok(readFileSync(path.join(dir, 'out.bin')).equals(copy), 'and it was written');
});

t.test('a peer thread hands over whole chunks in their own buffers; returned buffers leave by transfer', async (t) => {
  const src = tempDir(t);
  const data = randomBytes(prng(82), 2 * MIN_CHUNK_BYTES);
  writeFileSync(path.join(src, 'c.bin'), data);
  const h = await serve(src, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false });
  t.teardown(() => h.close({ graceful: false }));
  const m = h.library.manifest('c.bin')!;
  const got: FromPeerHost[] = [];
  let onChunk: () => void = () => {};
  const host = new WorkerPeerHost(
    (msg) => {
      got.push(msg);
      if (got.filter((x) => x.type === 'chunk').length === 2) onChunk();
    },
    (err) => t.fail(err.message),
  );
  t.teardown(() => host.close());
  const both = new Promise<void>((r) => (onChunk = r));
  host.send({ type: 'connect', peerId: 0, host: '127.0.0.1', port: h.port, cid: m.cid, chunks: 2, hello: localHello(), bits: new Uint8Array(1) });
  host.send({ type: 'get', peerId: 0, reqId: 1, cid: m.cid, from: 0, to: 2, size: m.size, chunkBytes: m.chunkBytes });
  await both;
  const chunks = got.filter((x): x is Extract<FromPeerHost, { type: 'chunk' }> => x.type === 'chunk');
  for (const c of chunks) {
    t.equal(c.bytes.buffer.byteLength, MIN_CHUNK_BYTES, `chunk ${c.chunk} owns exactly its own memory`);
    t.ok(Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.length).equals(data.subarray(c.chunk * MIN_CHUNK_BYTES, (c.chunk + 1) * MIN_CHUNK_BYTES)), `chunk ${c.chunk} bytes`);
  }
  const back = chunks[0]!.bytes;
  host.send({ type: 'buffer', bytes: back }, [back.buffer as ArrayBuffer]);
  t.equal(back.byteLength, 0, 'a buffer sent back for reuse is detached here');
});
