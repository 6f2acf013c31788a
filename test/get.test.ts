import t from 'tap';
import { writeFileSync, readFileSync, existsSync, statSync, utimesSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { serve } from '../lib/serve.js';
import { get } from '../lib/download/get.js';
import { InlineChunkPool } from '../lib/pool.js';
import { MIN_CHUNK_BYTES } from '../lib/constants.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { startFakePeer } from './helpers/fake-peer.js';
import { servePeer } from './helpers/procs.js';

const MiB = MIN_CHUNK_BYTES;

/** n in-process peers sharing `dir`; a rate limit makes the honest peers slower than the fakes, so fakes surely get work. */
async function share(t: { teardown(fn: () => unknown): void }, dir: string, n: number, maxUploadBytesPerSec?: number) {
  const handles = [];
  for (let i = 0; i < n; i++) {
    const h = await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false, ...(maxUploadBytesPerSec ? { maxUploadBytesPerSec } : {}) });
    t.teardown(() => h.close({ graceful: false }));
    handles.push(h);
  }
  return handles;
}

t.test('3 honest peers + liars (bad checksums; valid checksums, wrong bytes): exact file, liars dropped', async (t) => {
  const src = tempDir(t);
  const data = randomBytes(prng(21), 24 * MiB + 333);
  writeFileSync(path.join(src, 'big.iso'), data);
  const honest = await share(t, src, 3, 16 * MiB);
  const m = honest[0]!.library.manifest('big.iso')!;
  const badSum = await startFakePeer(path.join(src, 'big.iso'), m, 'bad-checksum', { name: 'big.iso', mtime: honest[0]!.library.stat('big.iso')!.mtime });
  const wrong = await startFakePeer(path.join(src, 'big.iso'), m, 'wrong-bytes', { name: 'big.iso', mtime: honest[0]!.library.stat('big.iso')!.mtime });
  t.teardown(() => badSum.close());
  t.teardown(() => wrong.close());
  const out = tempDir(t);
  // liars first, so they certainly get work
  const peers = [`127.0.0.1:${badSum.port}`, `127.0.0.1:${wrong.port}`, ...honest.map((h) => `127.0.0.1:${h.port}`)];
  const p = get('big.iso', { peers, outDir: out, threads: 1 });
  const dropped: string[] = [];
  p.download.on('peer-dropped', (e) => dropped.push(e.peer));
  const r = await p;
  t.ok(readFileSync(path.join(out, 'big.iso')).equals(data), 'byte-identical');
  t.same(dropped.sort(), [`127.0.0.1:${badSum.port}`, `127.0.0.1:${wrong.port}`].sort(), 'both liars dropped, no honest peer');
  t.ok(r.badPackets > 0, `${r.badPackets} bad packets dropped`);
  t.ok(r.badChunks > 0, `${r.badChunks} chunks failed their hash`);
  t.notOk(existsSync(path.join(out, 'big.iso.swarm-part')));
  t.notOk(existsSync(path.join(out, 'big.iso.swarm-ticket')));
});

t.test('stalling, cutting and oversize-declaring peers are dropped; the download goes on', async (t) => {
  const src = tempDir(t);
  const data = randomBytes(prng(22), 12 * MiB);
  writeFileSync(path.join(src, 'f.bin'), data);
  const [honest] = await share(t, src, 1, 4 * MiB);
  const m = honest!.library.manifest('f.bin')!;
  const mtime = honest!.library.stat('f.bin')!.mtime;
  const fakes = await Promise.all((['stall', 'cut', 'huge'] as const).map((mode) => startFakePeer(path.join(src, 'f.bin'), m, mode, { mtime })));
  for (const f of fakes) t.teardown(() => f.close());
  const out = tempDir(t);
  const p = get('f.bin', { peers: [...fakes.map((f) => `127.0.0.1:${f.port}`), `127.0.0.1:${honest!.port}`], outDir: out, stallMs: 1500, threads: 1 });
  const dropped: string[] = [];
  p.download.on('peer-dropped', (e) => dropped.push(e.code));
  await p;
  t.ok(readFileSync(path.join(out, 'f.bin')).equals(data));
  t.equal(dropped.length, 3, `dropped: ${dropped.join(', ')}`);
  t.ok(dropped.includes('SWARM_ERR_PEER_TIMEOUT'), 'the staller timed out');
  t.ok(dropped.includes('SWARM_ERR_FRAME_TOO_LARGE'), 'the oversize declaration was refused');
});

t.test('a peer killed mid-transfer: the download completes from the others', async (t) => {
  const src = tempDir(t);
  const data = randomBytes(prng(23), 40 * MiB);
  writeFileSync(path.join(src, 'movie.mkv'), data);
  const peers = await Promise.all([0, 1, 2].map(() => servePeer(t, src, ['--no-tracker', '--max-upload', '8'])));
  const out = tempDir(t);
  const p = get('movie.mkv', { peers: peers.map((x) => `127.0.0.1:${x.port}`), outDir: out, threads: 1 });
  let killed = false;
  p.download.on('progress', (e) => {
    if (!killed && e.bytes > 4 * MiB) {
      killed = true;
      peers[0]!.proc.kill('SIGKILL');
    }
  });
  const dropped: string[] = [];
  p.download.on('peer-dropped', (e) => dropped.push(e.peer));
  const r = await p;
  t.ok(killed, 'a peer was killed while the download ran');
  t.same(dropped, [`127.0.0.1:${peers[0]!.port}`]);
  t.ok(readFileSync(path.join(out, 'movie.mkv')).equals(data), 'byte-identical');
  t.ok(r.peersUsed >= 2);
});

t.test('sizes at chunk boundaries, 0 bytes, a subfolder with spaces and non-ASCII; mtime from the directory', async (t) => {
  const src = tempDir(t);
  const files: Record<string, Buffer> = {
    'zero.bin': Buffer.alloc(0),
    'exact.bin': randomBytes(prng(1), 2 * MiB),
    'plus1.bin': randomBytes(prng(2), 2 * MiB + 1),
    'minus1.bin': randomBytes(prng(3), 2 * MiB - 1),
    'sub dir/ñandú größe.bin': randomBytes(prng(4), MiB + 77),
  };
  mkdirSync(path.join(src, 'sub dir'));
  let mtime = 1_600_000_000;
  for (const [name, bytes] of Object.entries(files)) {
    writeFileSync(path.join(src, name), bytes);
    utimesSync(path.join(src, name), mtime, mtime++);
  }
  const { TrackerServer } = await import('../lib/tracker/server.js');
  const tr = new TrackerServer({ port: 0 });
  await tr.listen();
  t.teardown(() => tr.close());
  const h = await serve(src, { port: 0, tracker: `127.0.0.1:${tr.port}`, pool: new InlineChunkPool(), watch: false });
  t.teardown(() => h.close({ graceful: false }));
  const out = tempDir(t);
  for (const [name, bytes] of Object.entries(files)) {
    const r = await get(name, { tracker: `127.0.0.1:${tr.port}`, outDir: out, threads: 0 });
    const dest = path.join(out, ...name.split('/'));
    t.ok(readFileSync(dest).equals(bytes), `${name}: bytes`);
    t.equal(Math.floor(statSync(dest).mtimeMs / 1000), tr.registry.whoHas(name)!.mtime, `${name}: mtime from the directory`);
    t.equal(r.size, bytes.length);
  }
  const again = await get('exact.bin', { tracker: `127.0.0.1:${tr.port}`, outDir: out, threads: 0 });
  t.ok(again.upToDate, 'a second get of an identical file fetches nothing');
});
