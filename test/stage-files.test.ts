/**
 * The chunk pool's stage task (lib/stage-files.ts), on a pool thread and on the calling thread:
 * a batch of small files is verified against their content ids, each good one written to its
 * temp file with its mtime and left open; bytes of another content write nothing; a temp file
 * that cannot be made gives its verified bytes back; bytes in Node's shared buffer pool are
 * copied, not moved (moving them would empty every other buffer of that slab).
 */
import t, { type Test } from 'tap';
import { closeSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { InlineChunkPool, ThreadChunkPool, type ChunkPool } from '../lib/pool.js';
import { smallManifest } from '../lib/sync/small.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';

async function batch(t: Test, pool: ChunkPool): Promise<void> {
  const dir = tempDir(t);
  mkdirSync(path.join(dir, 'sub'));
  const rand = prng(3);
  const good = randomBytes(rand, 50_000);
  const other = randomBytes(rand, 1_000);
  const empty = Buffer.alloc(0);
  // a small Buffer.from() lives in Node's shared slab: moved, it would detach its neighbours
  const pooled = Buffer.from('a few bytes in the shared pool');
  const neighbour = Buffer.from('another small buffer');
  t.ok(pooled.buffer.byteLength > pooled.length, 'the test buffer is a slice of a bigger allocation');
  const mtimeSec = 1_700_000_000;
  const files = [
    { tmp: path.join(dir, 'sub', 'a.tmp'), cid: smallManifest(good).cid, mtimeSec },
    { tmp: path.join(dir, 'sub', 'b.tmp'), cid: smallManifest(good).cid, mtimeSec }, // bytes of another content
    { tmp: path.join(dir, 'sub', 'c.tmp'), cid: smallManifest(empty).cid, mtimeSec },
    { tmp: path.join(dir, 'gone', 'd.tmp'), cid: smallManifest(good).cid, mtimeSec }, // its folder is missing
    { tmp: path.join(dir, 'sub', 'e.tmp'), cid: smallManifest(pooled).cid, mtimeSec },
  ];
  const copyOfGood = Buffer.from(good);
  const results = await pool.stageFiles({ files, bytes: [Buffer.from(good), other, empty, Buffer.from(good), pooled] });
  t.equal(results.length, 5, 'one result per file');
  const [a, b, c, d, e] = results;
  t.ok(a?.ok, 'good bytes: staged');
  if (a?.ok) {
    t.ok(readFileSync(files[0]!.tmp).equals(copyOfGood), 'the temp file holds them');
    t.equal(statSync(files[0]!.tmp).mtimeMs, mtimeSec * 1000, 'with the mtime asked for');
    t.equal(a.size, good.length, 'its stat is returned');
    t.equal(a.ino, statSync(files[0]!.tmp).ino, 'the very file');
    t.ok(Buffer.from(a.hash).equals(smallManifest(copyOfGood).hashes), 'and the chunk hash');
    closeSync(a.fd); // left open for the caller's barrier
  }
  t.ok(b && !b.ok && b.mismatch, 'bytes of another content: refused');
  t.notOk(existsSync(files[1]!.tmp), 'and nothing written for them');
  t.ok(c?.ok, 'an empty file: staged');
  if (c?.ok) {
    t.equal(statSync(files[2]!.tmp).size, 0);
    closeSync(c.fd);
  }
  t.ok(d && !d.ok && !d.mismatch && d.errno === 'ENOENT', 'a missing folder: the error');
  if (d && !d.ok && !d.mismatch) t.ok(Buffer.from(d.bytes).equals(copyOfGood), 'with the verified bytes back');
  t.ok(e?.ok, 'bytes from the shared pool: staged');
  if (e?.ok) closeSync(e.fd);
  t.equal(neighbour.toString(), 'another small buffer', 'and the shared pool is intact');
  t.equal(pooled.toString(), 'a few bytes in the shared pool', 'the pooled bytes themselves too (copied, not moved)');
}

t.test('stage task on a pool thread', async (t) => {
  const pool = new ThreadChunkPool(1);
  t.teardown(() => pool.destroy());
  await batch(t, pool);
});

t.test('stage task on the calling thread', async (t) => {
  await batch(t, new InlineChunkPool());
});
