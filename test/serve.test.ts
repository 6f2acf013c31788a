import t from 'tap';
import net from 'node:net';
import { writeFileSync, symlinkSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { serve } from '../lib/serve.js';
import { InlineChunkPool } from '../lib/pool.js';
import { PeerClient } from '../lib/peer/client.js';
import { chunksOf } from '../lib/manifest.js';
import { encodeFrameBuffer } from '../lib/protocol/frame.js';
import { MIN_CHUNK_BYTES } from '../lib/constants.js';
import { listPeer } from '../lib/listing.js';
import { prng, randomBytes } from './helpers/prng.js';
import { fetchRange } from './helpers/peer-fetch.js';
import { tempDir, type TestLike } from './helpers/tmp.js';

const big = randomBytes(prng(11), 3 * MIN_CHUNK_BYTES + 12345);

async function startShare(t: TestLike, log?: (event: string, fields?: Record<string, unknown>) => void) {
  const dir = t.testdir({ 'hello.txt': 'hello world\n', 'sub dir': { 'ñandú.jpg': 'not really a picture' } });
  writeFileSync(path.join(dir, 'big.iso'), big);
  const outside = tempDir(t);
  writeFileSync(path.join(outside, 'secret.txt'), 'do not leak');
  symlinkSync(path.join(outside, 'secret.txt'), path.join(dir, 'leak.txt'));
  const h = await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false, ...(log ? { log } : {}) });
  t.teardown(() => h.close({ graceful: false }));
  return { dir, h };
}

t.test('list, manifest and a verified chunk range over 127.0.0.1', async (t) => {
  const { h } = await startShare(t);
  const { files } = await listPeer(`127.0.0.1:${h.port}`);
  t.same(files.map((f) => f.name), ['big.iso', 'hello.txt', 'sub dir/ñandú.jpg'], 'the outside symlink is not listed');
  t.same(files.map((f) => f.kind), ['archive', 'document', 'picture']);

  const c = new PeerClient('127.0.0.1', h.port);
  await c.connect();
  const entry = await c.stat('big.iso');
  const m = await c.manifest(entry.cid);
  c.destroy();
  t.equal(m.size, big.length);
  t.equal(chunksOf(m), 4);

  const r = await fetchRange(h.port, m.cid, 1, 4);
  t.equal(r.error, null);
  t.equal(r.badChecksums, 0);
  t.equal(r.firstOffset, MIN_CHUNK_BYTES);
  t.equal(r.lastFlags, 3, 'one last-in-chunk flag per chunk');
  t.ok(r.bytes.equals(big.subarray(MIN_CHUNK_BYTES)), 'bytes of chunks 1..3 match the file');
});

t.test('concurrent clients each get their own correct bytes', async (t) => {
  const { h } = await startShare(t);
  const cid = h.library.manifest('big.iso')!.cid;
  const results = await Promise.all([0, 1, 2, 3, 0, 1, 2, 3].map((c) => fetchRange(h.port, cid, c, c + 1)));
  results.forEach((r, i) => {
    const c = [0, 1, 2, 3, 0, 1, 2, 3][i]!;
    t.ok(r.bytes.equals(big.subarray(c * MIN_CHUNK_BYTES, (c + 1) * MIN_CHUNK_BYTES)), `client ${i} chunk ${c}`);
  });
});

t.test('names that escape the share are never served, by lookup or by seed-002 request; unknown content is refused', async (t) => {
  const events: string[] = [];
  const { h } = await startShare(t, (event, fields) => events.push(`${event} ${JSON.stringify(fields)}`));
  const c = new PeerClient('127.0.0.1', h.port);
  await c.connect();
  t.teardown(() => c.destroy());
  for (const name of ['../secret.txt', '/etc/passwd', 'sub dir/../../x', 'a\u0000b', 'a\\b', 'leak.txt']) {
    await t.rejects(c.stat(name), { code: 'SWARM_ERR_NOT_FOUND' }, `${JSON.stringify(name)}: not found`);
    const s = net.connect(h.port, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    s.write(name + '\n');
    await new Promise((r) => s.once('close', r));
    t.equal(Buffer.concat(got).length, 0, `${JSON.stringify(name)}: no byte by seed-002 request`);
  }
  t.match(events.join('\n'), /legacy-file-request-failed .*secret\.txt/, 'refusals are logged');
  const unknown = await fetchRange(h.port, 'ab'.repeat(32), 0, 1);
  t.equal(unknown.error!.code, 'SWARM_ERR_NOT_FOUND');
  const wrongRange = await fetchRange(h.port, h.library.manifest('big.iso')!.cid, 2, 99);
  t.equal(wrongRange.error!.code, 'SWARM_ERR_BAD_MESSAGE');
});

t.test('a changed file is refused under its old content id', async (t) => {
  const { dir, h } = await startShare(t);
  const oldCid = h.library.manifest('hello.txt')!.cid;
  writeFileSync(path.join(dir, 'hello.txt'), 'changed!!!!!\n');
  utimesSync(path.join(dir, 'hello.txt'), 1_800_000_000, 1_800_000_000);
  const r = await fetchRange(h.port, oldCid, 0, 1);
  t.equal(r.error?.code, 'SWARM_ERR_FILE_CHANGED');
  t.equal(r.bytes.length, 0, 'no old or new bytes were sent');
});

t.test('a malformed frame closes that connection only', async (t) => {
  const { h } = await startShare(t);
  const good = new PeerClient('127.0.0.1', h.port);
  await good.connect();
  const bad = net.connect(h.port, '127.0.0.1');
  bad.resume(); // read (and drop) the error frame so 'close' can follow 'end'
  await new Promise((r) => bad.once('connect', r));
  const closed = new Promise((r) => bad.once('close', r));
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(0, 0);
  prefix.writeUInt32BE(0xfffffff0, 4); // absurd data packet length
  bad.write(prefix);
  await closed;
  t.pass('bad connection closed');
  const bad2 = net.connect(h.port, '127.0.0.1');
  bad2.resume();
  await new Promise((r) => bad2.once('connect', r));
  const closed2 = new Promise((r) => bad2.once('close', r));
  bad2.write(encodeFrameBuffer({ t: 'no-such-message' }));
  await closed2;
  t.same((await good.list()).files.length, 3, 'the other client is still served');
  good.destroy();
});

t.test('a seed-002 plain-name request gets the raw file', async (t) => {
  const { h } = await startShare(t);
  const s = net.connect(h.port, '127.0.0.1');
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => s.once('connect', r));
  s.write('big.iso');
  await new Promise((r) => s.once('close', r));
  t.ok(Buffer.concat(chunks).equals(big));
});

t.test('a plain-name client that half-closes after the name still gets the whole file', async (t) => {
  // a stock client may shut down its sending side (SHUT_WR) once the name is out; its reading
  // side stays open, and an end with no bytes would look like a complete empty file
  const { h } = await startShare(t);
  for (const name of ['big.iso', 'hello.txt']) {
    const s = net.connect({ port: h.port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => s.once('connect', r));
    s.end(name);
    await new Promise((r) => s.once('close', r));
    t.equal(Buffer.concat(chunks).length, name === 'big.iso' ? big.length : 12, `${name}: every byte`);
    if (name === 'big.iso') t.ok(Buffer.concat(chunks).equals(big), 'the right bytes');
  }
  // a framed client that half-closes is still answered and the connection ends
  const s = net.connect({ port: h.port, host: '127.0.0.1', allowHalfOpen: true });
  s.resume();
  await new Promise((r) => s.once('connect', r));
  s.end();
  await new Promise((r) => s.once('close', r));
  for (let i = 0; i < 100 && h.server!.connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(h.server!.connections, 0, 'nothing left open');
});

t.test('hashing progress reaches the caller during the first scan, before serve resolves', async (t) => {
  const dir = t.testdir({});
  writeFileSync(path.join(dir, 'a.bin'), randomBytes(prng(12), 3 * MIN_CHUNK_BYTES));
  writeFileSync(path.join(dir, 'b.bin'), randomBytes(prng(13), MIN_CHUNK_BYTES));
  const seen: number[] = [];
  const h = await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false, onHashing: (p) => seen.push(p.bytesDone) });
  t.teardown(() => h.close({ graceful: false }));
  t.ok(seen.length >= 3, `${seen.length} progress events`);
  t.equal(seen.at(-1), 4 * MIN_CHUNK_BYTES, 'the last one covers every byte');
  t.same([...seen].sort((x, y) => x - y), seen, 'never going backwards');
});
