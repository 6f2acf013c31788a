import t from 'tap';
import { writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { MIN_CHUNK_BYTES } from '../lib/constants.js';
import { Ticket } from '../lib/storage/ticket.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { servePeer, swarm } from './helpers/procs.js';

const MiB = MIN_CHUNK_BYTES;

t.test('SIGKILL mid-download, then the same command: resumes, byte-identical, fetches only what is missing', async (t) => {
  const src = tempDir(t);
  const chunks = 48;
  const data = randomBytes(prng(31), chunks * MiB - 1000);
  writeFileSync(path.join(src, 'disk.img'), data);
  const peers = await Promise.all([0, 1].map(() => servePeer(t, src, ['--no-tracker', '--max-upload', '10'])));
  const out = tempDir(t);
  // 8 MiB in flight: at most 8 chunks are requested but not yet on disk at any moment
  const inFlight = 8;
  const args = ['get', 'disk.img', ...peers.flatMap((p) => ['--peer', `127.0.0.1:${p.port}`]), '-o', out, '--json', '--max-memory', String(inFlight)];

  const first = swarm(t, args);
  const progress = await first.waitFor((o) => o.event === 'progress' && (o.bytes as number) > 4 * MiB);
  first.kill('SIGKILL');
  const ended = await first.exit;
  t.equal(ended.signal, 'SIGKILL');
  t.notOk(existsSync(path.join(out, 'disk.img')), 'nothing under the final name');
  t.ok(existsSync(path.join(out, 'disk.img.swarm-part')), 'the part file stays');
  const ticket = (await Ticket.load(path.join(out, 'disk.img.swarm-ticket'))).ticket;
  t.ok(ticket, 'the ticket stays');
  const saved = Ticket.fromData('x', ticket!, chunks).count();
  const reported = Math.floor((progress.bytes as number) / MiB);
  t.ok(saved >= reported - inFlight, `ticket holds ${saved} chunks; ${reported} were reported verified before the kill (at most ${inFlight} in flight may be lost)`);
  t.ok(saved < chunks, 'killed before the end');

  const second = swarm(t, args);
  const start = await second.waitFor((o) => o.event === 'start');
  t.equal(start.resumedChunks, saved, 'resumed from the ticket');
  const done = await second.waitFor((o) => o.event === 'done', 60_000);
  t.equal((await second.exit).code, 0);
  t.equal(done.fetchedChunks, chunks - saved, 'fetched exactly the chunks the ticket lacks');
  t.ok((done.fetchedChunks as number) <= chunks - reported + inFlight, 'no more than the missing chunks plus those in flight');
  t.ok(readFileSync(path.join(out, 'disk.img')).equals(data), 'byte-identical');
  t.notOk(existsSync(path.join(out, 'disk.img.swarm-ticket')), 'ticket removed');
  t.notOk(existsSync(path.join(out, 'disk.img.swarm-part')), 'part file renamed');
});

t.test('Ctrl-C saves the ticket and exits 130; the next run resumes', async (t) => {
  const src = tempDir(t);
  const data = randomBytes(prng(32), 30 * MiB);
  writeFileSync(path.join(src, 'x.bin'), data);
  const peer = await servePeer(t, src, ['--no-tracker', '--max-upload', '10']);
  const out = tempDir(t);
  const args = ['get', 'x.bin', '--peer', `127.0.0.1:${peer.port}`, '-o', out, '--json'];
  const first = swarm(t, args);
  await first.waitFor((o) => o.event === 'progress' && (o.bytes as number) > 2 * MiB);
  first.kill('SIGINT');
  const ended = await first.exit;
  t.equal(ended.code, 130, 'interrupted exit code');
  t.match(first.lines.join('\n'), /"code":"SWARM_ERR_INTERRUPTED"/);
  const ticket = Ticket.fromData('x', (await Ticket.load(path.join(out, 'x.bin.swarm-ticket'))).ticket!, 30);
  t.ok(ticket.count() > 0, `${ticket.count()} chunks kept`);
  const second = swarm(t, args);
  const done = await second.waitFor((o) => o.event === 'done', 60_000);
  t.equal(done.resumedChunks, ticket.count());
  t.ok(readFileSync(path.join(out, 'x.bin')).equals(data));
});

t.test('a file that changed on the swarm discards the old partial download', async (t) => {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'doc.txt'), 'version one, long enough to matter\n');
  const out = tempDir(t);
  // a stale ticket and part from another content id
  writeFileSync(path.join(out, 'doc.txt.swarm-part'), 'junk');
  const stale = new Ticket(path.join(out, 'doc.txt.swarm-ticket'), { name: 'doc.txt', cid: 'ab'.repeat(32), size: 4, chunkBytes: MiB, mtime: 1 }, 1);
  stale.mark(0);
  await stale.flush();
  await stale.close(); // the test's own handle (a leaked one is closed by the GC, with a warning)
  const peer = await servePeer(t, src, ['--no-tracker']);
  const run = swarm(t, ['get', 'doc.txt', '--peer', `127.0.0.1:${peer.port}`, '-o', out, '--json']);
  const warning = await run.waitFor((o) => o.event === 'warning');
  t.match(warning.message, /changed on the swarm/);
  await run.waitFor((o) => o.event === 'done');
  t.equal(readFileSync(path.join(out, 'doc.txt'), 'utf8'), 'version one, long enough to matter\n');

  // a ticket from an older swarm (xxhash64 content ids) is recognised and not trusted
  const out2 = tempDir(t);
  writeFileSync(path.join(out2, 'doc.txt.swarm-part'), 'junk');
  writeFileSync(path.join(out2, 'doc.txt.swarm-ticket'), JSON.stringify({ version: 1, name: 'doc.txt', cid: '0123456789abcdef', size: 4, chunkBytes: MiB, mtime: 1, verified: 'AQ==' }));
  const again = swarm(t, ['get', 'doc.txt', '--peer', `127.0.0.1:${peer.port}`, '-o', out2, '--json']);
  t.match((await again.waitFor((o) => o.event === 'warning')).message, /older swarm/);
  t.equal((await again.waitFor((o) => o.event === 'done')).resumedChunks, 0);
});

t.test('a ticket whose part file is gone starts over instead of trusting it', async (t) => {
  const src = tempDir(t);
  const data = randomBytes(prng(33), 3 * MiB + 5);
  writeFileSync(path.join(src, 'p.bin'), data);
  const peer = await servePeer(t, src, ['--no-tracker']);
  const out = tempDir(t);
  const args = ['get', 'p.bin', '--peer', `127.0.0.1:${peer.port}`, '-o', out, '--json'];
  const first = swarm(t, args);
  await first.waitFor((o) => o.event === 'done');
  const { createHash } = await import('node:crypto');
  // forge the state of an interrupted run whose part file was then deleted
  const start = JSON.parse(first.lines.find((l) => l.includes('"event":"start"'))!);
  const forged = new Ticket(path.join(out, 'p.bin.swarm-ticket'), { name: 'p.bin', cid: start.cid, size: data.length, chunkBytes: MiB, mtime: start.mtime }, 4);
  for (const i of [0, 1, 2]) forged.mark(i);
  await forged.flush();
  rmSync(path.join(out, 'p.bin'));
  const second = swarm(t, args);
  const warning = await second.waitFor((o) => o.event === 'warning');
  t.match(warning.message, /gone or damaged/);
  const done = await second.waitFor((o) => o.event === 'done');
  t.equal(done.resumedChunks, 0, 'nothing trusted from the ticket');
  t.equal(createHash('sha256').update(readFileSync(path.join(out, 'p.bin'))).digest('hex'), createHash('sha256').update(data).digest('hex'));
});
