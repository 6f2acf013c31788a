import t from 'tap';
import { writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { MIN_CHUNK_BYTES } from '../lib/constants.js';
import { get } from '../lib/download/get.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { servePeer } from './helpers/procs.js';

t.test('Ctrl-C on serve: no new peers, the running transfer finishes, then it exits; --log has the events', async (t) => {
  const src = tempDir(t);
  const data = randomBytes(prng(61), 12 * MIN_CHUNK_BYTES);
  writeFileSync(path.join(src, 'f.bin'), data);
  const logFile = path.join(tempDir(t), 'serve.log');
  const { proc, port } = await servePeer(t, src, ['--no-tracker', '--max-upload', '6', '--log', logFile]);
  const out = tempDir(t);
  const p = get('f.bin', { peers: [`127.0.0.1:${port}`], outDir: out, threads: 0 });
  await new Promise<void>((resolve) => p.download.on('progress', (e) => e.bytes > 0 && resolve()));
  proc.kill('SIGINT');
  await proc.waitFor((o) => o.event === 'stopping');
  const r = await p;
  t.ok(readFileSync(path.join(out, 'f.bin')).equals(data), 'the transfer running at Ctrl-C completed');
  t.equal(r.peersDropped, 0);
  const ended = await proc.exit;
  t.equal(ended.code, 0, 'then serve exited cleanly');
  const log = readFileSync(logFile, 'utf8');
  t.match(log, /serving /);
  t.match(log, /peer-connected /);
});

t.test('a second Ctrl-C ends serve at once with the interrupted code', async (t) => {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'g.bin'), randomBytes(prng(62), 20 * MIN_CHUNK_BYTES));
  const { proc, port } = await servePeer(t, src, ['--no-tracker', '--max-upload', '2']);
  const p = get('g.bin', { peers: [`127.0.0.1:${port}`], outDir: tempDir(t), threads: 0, stallMs: 60_000 });
  p.catch(() => {}); // it loses its only peer
  await new Promise<void>((resolve) => p.download.on('progress', (e) => e.bytes > 0 && resolve()));
  proc.kill('SIGINT');
  await proc.waitFor((o) => o.event === 'stopping');
  proc.kill('SIGINT');
  const ended = await proc.exit;
  t.equal(ended.code, 130);
  await t.rejects(p, { code: 'SWARM_ERR_NO_PEERS' }, 'the download stops with a clear error and keeps its ticket');
});
