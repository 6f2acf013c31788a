import t from 'tap';
import net from 'node:net';
import { writeFileSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { TrackerServer } from '../lib/tracker/server.js';
import { trackerVersions, trackerDirectory, withTracker } from '../lib/tracker/client.js';
import { FramedClient } from '../lib/net/framed-client.js';
import { serve } from '../lib/serve.js';
import { InlineChunkPool } from '../lib/pool.js';
import { tempDir } from './helpers/tmp.js';
import { freePort } from '../bench/lib/ports.js';

async function startTracker(t: { teardown(fn: () => unknown): void }, opts = {}) {
  const tr = new TrackerServer({ port: 0, ...opts });
  await tr.listen();
  t.teardown(() => tr.close());
  return tr;
}

async function connect(port: number) {
  const c = new FramedClient('127.0.0.1', port, { side: 'trackerReply' });
  await c.connect();
  return c;
}

/** A content id from a short tag (64 hex digits, as the protocol wants). */
const cidOf = (tag: string) => Buffer.from(tag.padEnd(32, '.')).toString('hex').slice(0, 64);
const file = (name: string, mtime: number, tag: string) => ({ name, mtime, size: 5, cid: cidOf(tag) });
const newest = async (port: number, name: string) => (await trackerVersions(`127.0.0.1:${port}`, name)).versions[0] ?? null;
const dirNames = async (port: number) => (await trackerDirectory(`127.0.0.1:${port}`)).entries.map(([n]) => n).sort();

/** Wait until `check` holds, re-checking after each change the tracker reports (at most `ms`). */
async function until(tr: TrackerServer, check: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    const left = end - Date.now();
    if (left <= 0) return false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, left);
      function done() {
        clearTimeout(timer);
        tr.off('change', done);
        resolve();
      }
      tr.on('change', done);
    });
  }
  return true;
}

t.test('framed protocol: register, keepalive, update, delete, who-has, unregister', async (t) => {
  const tr = await startTracker(t);
  const a = await connect(tr.port);
  const reg = await a.request({ t: 'register', port: 9001, files: [file('a.txt', 100, 'ca'), file('dir/b.bin', 50, 'cb')] }, 'ok');
  t.same(reg.message.dropped, [], 'nothing dropped');
  t.same(await dirNames(tr.port), ['a.txt', 'dir/b.bin']);
  t.equal((await a.request({ t: 'keepalive', port: 9001 }, 'ok')).message.t, 'ok');
  await a.request({ t: 'update', files: [file('c.txt', 7, 'cc')] }, 'ok');
  await a.request({ t: 'delete', names: ['a.txt'] }, 'ok');
  t.same(await dirNames(tr.port), ['c.txt', 'dir/b.bin']);
  const who = await newest(tr.port, 'dir/b.bin');
  t.same(who!.holders, [{ ip: '127.0.0.1', port: 9001 }]);
  t.equal(await newest(tr.port, 'nope'), null);
  await a.request({ t: 'unregister' }, 'ok');
  t.same(await dirNames(tr.port), []);
  a.destroy();
});

t.test('a closed connection leaves at once; silence leaves after 3 keepalive periods', async (t) => {
  let now = 0;
  const tr = await startTracker(t, { keepaliveMs: 1_000, now: () => now });
  const a = await connect(tr.port);
  const b = await connect(tr.port);
  await a.request({ t: 'register', port: 1, files: [file('x', 1, 'c')] }, 'ok');
  await b.request({ t: 'register', port: 2, files: [file('x', 1, 'c')] }, 'ok');
  now = 2_000;
  await a.request({ t: 'keepalive' }, 'ok');
  now = 3_001;
  tr.expire();
  t.same(tr.registry.whoHas('x')!.holders.map((h) => h.port), [1], 'b expired after 3 missed keepalives');
  a.destroy();
  t.ok(await until(tr, () => tr.registry.peerCount === 0), 'a dropped when its connection closed');
  b.destroy();
});

t.test('two versions of one name: the newer comes first, the older is still listed', async (t) => {
  const tr = await startTracker(t);
  const a = await connect(tr.port);
  const b = await connect(tr.port);
  await a.request({ t: 'register', port: 1, files: [file('doc', 100, 'old')] }, 'ok');
  await b.request({ t: 'register', port: 2, files: [file('doc', 200, 'new')] }, 'ok');
  const { versions } = await trackerVersions(`127.0.0.1:${tr.port}`, 'doc');
  t.same(versions.map((v) => v.cid), [cidOf('new'), cidOf('old')]);
  t.same(versions[0]!.holders.map((h) => h.port), [2]);
  t.same(versions[1]!.holders.map((h) => h.port), [1]);
  a.destroy();
  b.destroy();
});

t.test('a seed-002 client from the tables: raw JSON in, directory out, plain file request', async (t) => {
  const tr = await startTracker(t);
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'fileB.txt'), 'content of B\n');
  utimesSync(path.join(dir, 'fileB.txt'), 1548878750, 1548878750);
  const peer = await serve(dir, { port: 0, tracker: `127.0.0.1:${tr.port}`, pool: new InlineChunkPool(), watch: false });
  t.teardown(() => peer.close({ graceful: false }));

  const sock = net.connect(tr.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let buf = '';
  const nextObject = () =>
    new Promise<Record<string, { ip: string; port: number; mtime: number }>>((resolve) => {
      const onData = (d: Buffer) => {
        buf += d.toString();
        try {
          const v = JSON.parse(buf);
          buf = '';
          sock.off('data', onData);
          resolve(v);
        } catch {
          // not complete yet
        }
      };
      sock.on('data', onData);
    });
  // Table 1, Initial Message
  sock.write(JSON.stringify({ port: 8001, files: [{ mtime: 1548878750, name: 'fileA.txt' }] }));
  const dir1 = await nextObject();
  t.same(dir1['fileA.txt'], { ip: '127.0.0.1', port: 8001, mtime: 1548878750 });
  t.same(dir1['fileB.txt'], { ip: '127.0.0.1', port: peer.port, mtime: 1548878750 });
  t.same(Object.keys(dir1['fileB.txt']!).sort(), ['ip', 'mtime', 'port'], 'exactly the seed fields');
  // Table 1, Keep-alive Message
  sock.write(JSON.stringify({ port: 8001 }));
  const dir2 = await nextObject();
  t.same(Object.keys(dir2).sort(), ['fileA.txt', 'fileB.txt']);
  // Table 2, File Request to the peer the directory named
  const fr = net.connect(dir1['fileB.txt']!.port, dir1['fileB.txt']!.ip);
  const got: Buffer[] = [];
  fr.on('data', (d: Buffer) => got.push(d));
  await new Promise((r) => fr.once('connect', r));
  fr.write('fileB.txt');
  await new Promise((r) => fr.once('close', r));
  t.equal(Buffer.concat(got).toString(), 'content of B\n');
  sock.destroy();
});

t.test('garbage and oversized input close that connection; others are still served', async (t) => {
  const tr = await startTracker(t);
  const good = await connect(tr.port);
  await good.request({ t: 'register', port: 5, files: [file('x', 1, 'c')] }, 'ok');
  for (const junk of [Buffer.from('{"port": 1, "files": [1, 2'), Buffer.from('{"port": "no"}'), Buffer.from([0, 0, 0, 0, 255, 255, 255, 255]), Buffer.from('hello, tracker!')]) {
    const s = net.connect(tr.port, '127.0.0.1');
    s.on('error', () => {}); // the tracker may reset us mid-write; that is the point
    s.resume();
    await new Promise((r) => s.once('connect', r));
    const closed = new Promise((r) => s.once('close', r));
    s.write(junk);
    if (junk[0] === 0x7b && junk.toString().endsWith('2')) s.write(Buffer.alloc(2 << 20, 0x20)); // oversized: a never-ending object
    const result = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 3_000))]);
    t.equal(result, 'closed', `closed after ${JSON.stringify(junk.toString('latin1').slice(0, 20))}`);
    s.destroy();
  }
  t.equal((await good.request({ t: 'who-has', name: 'x' }, 'holders')).message.t, 'holders', 'the good peer is still served');
  good.destroy();
});

t.test('serving peers register, and come back after a tracker restart without being restarted', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'shared.txt'), 'abc');
  let tr = new TrackerServer({ port: 0 });
  await tr.listen();
  const port = tr.port;
  const peer = await serve(dir, { port: 0, tracker: `127.0.0.1:${port}`, pool: new InlineChunkPool(), watch: false, keepaliveMs: 200 });
  t.teardown(() => peer.close({ graceful: false }));
  t.ok(await until(tr, () => tr.registry.whoHas('shared.txt') !== null));
  await tr.close();
  tr = new TrackerServer({ port });
  await tr.listen();
  t.teardown(() => tr.close());
  t.ok(await until(tr, () => tr.registry.whoHas('shared.txt') !== null), 'registered again');
  t.ok(await newest(port, 'shared.txt'), 'and the restarted tracker answers for it');
  // changes made while serving reach the tracker as update / delete
  writeFileSync(path.join(dir, 'later.txt'), 'new file');
  await peer.library.refresh();
  t.ok(await until(tr, () => tr.registry.whoHas('later.txt') !== null), 'update reached the tracker');
});

t.test('a second serve without --tracker joins the embedded tracker of the first', async (t) => {
  const a = tempDir(t);
  const b = tempDir(t);
  writeFileSync(path.join(a, 'same.bin'), 'same bytes');
  writeFileSync(path.join(b, 'same.bin'), 'same bytes');
  utimesSync(path.join(a, 'same.bin'), 1_700_000_000, 1_700_000_000);
  utimesSync(path.join(b, 'same.bin'), 1_700_000_000, 1_700_000_000);
  const trackerPort = await freePort(); // the embedded tracker cannot take port 0: the second serve must find it
  const first = await serve(a, { port: 0, trackerPort, pool: new InlineChunkPool(), watch: false });
  t.teardown(() => first.close({ graceful: false }));
  const second = await serve(b, { port: 0, trackerPort, pool: new InlineChunkPool(), watch: false });
  t.teardown(() => second.close({ graceful: false }));
  t.ok(first.tracker!.embedded);
  t.notOk(second.tracker!.embedded, 'the second joined instead of failing');
  const who = await newest(trackerPort, 'same.bin');
  t.same(who!.holders.map((h) => h.port).sort(), [first.port, second.port].sort());
  const q = await withTracker(`127.0.0.1:${trackerPort}`, (c) => c.request({ t: 'dir' }, 'directory'));
  t.equal(q.message.t, 'directory');
});

t.test('a swarm peer\'s port given as the tracker: said plainly, not as "unknown request"', async (t) => {
  const a = await serve(tempDir(t), { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false });
  t.teardown(() => a.close({ graceful: false }));
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'x.txt'), 'x');
  const states: { connected: boolean; message?: string }[] = [];
  let seen!: () => void;
  const said = new Promise<void>((r) => (seen = r));
  const b = await serve(dir, {
    port: 0,
    tracker: `127.0.0.1:${a.port}`,
    pool: new InlineChunkPool(),
    watch: false,
  });
  t.teardown(() => b.close({ graceful: false }));
  b.on('tracker', (s: { connected: boolean; message?: string }) => {
    states.push(s);
    if (s.message) seen();
  });
  let timer!: NodeJS.Timeout;
  await Promise.race([said, new Promise<void>((r) => (timer = setTimeout(r, 10_000)))]);
  clearTimeout(timer);
  const withMessage = states.find((s) => s.message);
  t.ok(withMessage, 'a tracker state with a message');
  t.match(withMessage?.message ?? '', /not a swarm tracker: it answered as a swarm peer/, 'saying it is a peer, not a tracker');
  t.notOk(states.some((s) => s.connected), 'never connected');
});
