import t from 'tap';
import { writeFileSync, utimesSync, symlinkSync, unlinkSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Library } from '../lib/share/library.js';
import { ThreadChunkPool, InlineChunkPool } from '../lib/pool.js';
import { chunkHash, hashAt } from '../lib/hashing.js';
import { chunksOf, contentId } from '../lib/manifest.js';
import { MIN_CHUNK_BYTES, PACKET_PAYLOAD_BYTES } from '../lib/constants.js';
import { sum16 } from '../lib/protocol/checksum.js';
import { prng, randomBytes } from './helpers/prng.js';

t.test('manifests: chunk hashes, content id, and a cache that makes restarts free', async (t) => {
  const dir = t.testdir({ 'small.txt': 'hello world', 'sub': { 'empty': '' } });
  const big = randomBytes(prng(3), 3 * MIN_CHUNK_BYTES + 17);
  writeFileSync(path.join(dir, 'big.bin'), big);
  const pool = new ThreadChunkPool(2);
  t.teardown(() => pool.destroy());

  const first = new Library(dir, { pool, watch: false });
  await first.start();
  first.stop();
  t.equal(first.counters.filesHashed, 3, 'all three files hashed on the first start');
  const m = first.manifest('big.bin')!;
  t.equal(chunksOf(m), 4);
  t.same(hashAt(m.hashes, 3), chunkHash(big.subarray(3 * MIN_CHUNK_BYTES)), 'last (short) chunk hash (BLAKE3)');
  t.same(hashAt(m.hashes, 0), chunkHash(big.subarray(0, MIN_CHUNK_BYTES)));
  t.equal(m.cid, contentId(m.size, m.chunkBytes, m.hashes), 'the content id is BLAKE3 of the manifest');
  t.match(m.cid, /^[0-9a-f]{64}$/);
  t.equal(first.manifest('sub/empty')!.hashes.length, 0, 'a 0-byte file has no chunks');
  // the packet payload sums a seeder sends are taken while hashing, and kept in the cache
  const sumsOf = (lib: Library) => [0, 1, 2, 3].map((c) => Array.from(lib.byCid(m.cid)!.packetSums!(c) ?? []));
  const expect = [0, 1, 2, 3].map((c) => {
    const per = MIN_CHUNK_BYTES / PACKET_PAYLOAD_BYTES;
    return Array.from({ length: per }, (_, k) => {
      const at = c * MIN_CHUNK_BYTES + k * PACKET_PAYLOAD_BYTES;
      return at < big.length ? sum16(big.subarray(at, Math.min(big.length, at + PACKET_PAYLOAD_BYTES, (c + 1) * MIN_CHUNK_BYTES))) : 0;
    });
  });
  t.same(sumsOf(first), expect, 'every packet payload sum of every chunk, taken when hashed');

  const second = new Library(dir, { pool, watch: false });
  await second.start();
  t.equal(second.counters.filesHashed, 0, 'nothing hashed when nothing changed');
  t.same(second.manifest('big.bin'), m);
  t.same(sumsOf(second), expect, 'the sums come back from the cache after a restart');

  writeFileSync(path.join(dir, 'small.txt'), 'hello again');
  utimesSync(path.join(dir, 'small.txt'), 1_900_000_000, 1_900_000_000);
  await second.refresh();
  second.stop();
  t.equal(second.counters.filesHashed, 1, 'only the changed file is hashed again');
  t.equal(second.stat('small.txt')!.mtime, 1_900_000_000);
  t.not(second.manifest('small.txt')!.cid, first.manifest('small.txt')!.cid);
});

t.test('inline pool gives the same manifests as the thread pool', async (t) => {
  const dir = t.testdir({});
  writeFileSync(path.join(dir, 'f.bin'), randomBytes(prng(5), 2 * MIN_CHUNK_BYTES + 1));
  const pool = new ThreadChunkPool(2);
  t.teardown(() => pool.destroy());
  const a = new Library(dir, { pool, watch: false, stateDir: path.join(dir, 'state-a') });
  const b = new Library(dir, { pool: new InlineChunkPool(), watch: false, stateDir: path.join(dir, 'state-b') });
  await a.start();
  await b.start();
  a.stop();
  b.stop();
  t.same(a.manifest('f.bin'), b.manifest('f.bin'));
});

t.test('a file that cannot be shared is said once, not at every rescan; again if it comes back', async (t) => {
  const dir = t.testdir({ 'ok.txt': 'fine' });
  const outside = mkdtempSync(path.join(tmpdir(), 'swarm-outside-'));
  t.teardown(() => rmSync(outside, { recursive: true, force: true }));
  writeFileSync(path.join(outside, 'secret.txt'), 'no');
  symlinkSync(path.join(outside, 'secret.txt'), path.join(dir, 'link.txt'));
  const said: string[] = [];
  const lib = new Library(dir, { pool: new InlineChunkPool(), watch: false, onSkip: (name, reason) => said.push(`${name}: ${reason}`) });
  await lib.start();
  t.teardown(() => lib.stop());
  for (let i = 0; i < 3; i++) await lib.refresh();
  t.same(said, ['link.txt: symlink leads outside the share'], 'once over four scans');
  unlinkSync(path.join(dir, 'link.txt'));
  await lib.refresh();
  symlinkSync(path.join(outside, 'secret.txt'), path.join(dir, 'link.txt'));
  await lib.refresh();
  t.equal(said.length, 2, 'said again after it was fixed and came back');
});

t.test("a file the node writes inside its share (its --log) is neither shared nor watched", async (t) => {
  const dir = t.testdir({ 'ok.txt': 'fine', 'serve.log': 'line\n' });
  const lib = new Library(dir, { pool: new InlineChunkPool(), watch: false, ignore: [path.join(dir, 'serve.log')] });
  await lib.start();
  t.teardown(() => lib.stop());
  t.same(lib.files().map((f) => f.name), ['ok.txt'], 'the log is not shared');
});
