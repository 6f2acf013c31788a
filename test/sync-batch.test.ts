/**
 * `swarm sync` with many small files (issue "keep folders in step", items 3 and 6): files of one
 * chunk come pipelined over the syncer's connection and land in batches (verified, through
 * DIR/.swarm/tmp/, one durability barrier per batch), with their bytes and mtimes, and nothing is
 * left in the temp folder; bytes that do not hash to the content id asked for never land; a file
 * still being written is announced only once it holds still.
 */
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { STABLE_MS } from '../lib/sync/syncer.js';
import { Pipe, PIPE_MAX_LOAD, smallManifest } from '../lib/sync/small.js';
import { Lander } from '../lib/sync/lander.js';
import { ERROR_CODES } from '../lib/errors.js';
import { decodePacketHeader, encodePacket, FLAG_LAST_IN_CHUNK, PACKET_HEADER_BYTES, packetHeaderSum } from '../lib/protocol/packet.js';
import { FRAME_PREFIX_BYTES } from '../lib/constants.js';
import type { PeerClient } from '../lib/peer/client.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer, connect, converge } from './helpers/sync-peers.js';



for (const onPool of [false, true])
t.test(`300 small files in 10 folders: fetched in batches, bytes and mtimes, no temp file left (verified and staged ${onPool ? 'on pool threads' : 'on the main thread'})`, async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  const rand = prng(7);
  const want = new Map<string, Buffer>();
  for (let i = 0; i < 300; i++) {
    const dir = `d${i % 10}`;
    mkdirSync(path.join(da, dir), { recursive: true });
    const name = `${dir}/f${i}.bin`;
    const data = randomBytes(rand, i === 0 ? 0 : 1 + Math.floor(rand() * 40_000));
    writeFileSync(path.join(da, name), data);
    utimesSync(path.join(da, name), 1_600_000_000 + i, 1_600_000_000 + i);
    want.set(name, data);
  }
  const a = await peer(t, da);
  const b = await peer(t, db, onPool ? { threads: 2, stageOnPool: true } : {});
  b.node.book.add({ ip: '127.0.0.1', port: a.node.port }, 'neighbor');
  let fetched = 0;
  b.sync.on('fetched', () => fetched++);
  const warnings: string[] = [];
  b.sync.on('warning', (w) => warnings.push(w));
  const r = await b.sync.syncOnce();
  t.equal(r.pending, 0, `nothing left (${warnings.slice(0, 3).join('; ')})`);
  t.equal(fetched, 300, 'every file fetched');
  let bytesOk = 0;
  let mtimesOk = 0;
  for (const [name, data] of want) {
    const p = path.join(db, name);
    if (existsSync(p) && readFileSync(p).equals(data)) bytesOk++;
    if (existsSync(p) && Math.floor(statSync(p).mtimeMs / 1000) === 1_600_000_000 + Number(name.split('/f')[1]!.split('.')[0])) mtimesOk++;
  }
  t.equal(bytesOk, 300, 'bytes');
  t.equal(mtimesOk, 300, 'mtimes from the peer');
  const temps = (readdirSync(db, { recursive: true }) as string[]).filter((f) => f.includes('.swarm-tmp-'));
  t.same(temps, [], 'no temp file left');
  t.equal(b.node.library.files().length, 300, 'all served at once (adopted, not rescanned)');
  t.equal(b.node.library.counters.filesHashed, 0, 'and not hashed again');
  t.equal(b.sync.index.all().filter((e) => e.deleted === undefined && e.agreed === e.cid).length, 300, 'the index agrees on all of them');
});

/**
 * A real packet (checksummed as a server sends it), handed to a pipe as sync's streaming
 * connection does: start, its payload in pieces (cut at `cuts`), end. `flip`: a payload byte
 * changed after the sum was taken. True when taken, false when refused (no request of ours).
 */
function feed(pipe: Pipe, requestId: number, offset: number, payload: Buffer, o: { cuts?: number[]; flip?: number } = {}): boolean {
  const wire = encodePacket({ flags: FLAG_LAST_IN_CHUNK, requestId, chunk: 0, offset }, payload);
  const head = wire.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + PACKET_HEADER_BYTES);
  const h = decodePacketHeader(head);
  const body = Buffer.from(wire.subarray(FRAME_PREFIX_BYTES + PACKET_HEADER_BYTES));
  if (o.flip !== undefined) body[o.flip]! ^= 0x10;
  try {
    pipe.onPacketStart(h, packetHeaderSum(head));
  } catch (err) {
    if ((err as { code?: string }).code === ERROR_CODES.BAD_MESSAGE) return false;
    throw err;
  }
  const cuts = [0, ...(o.cuts ?? []).filter((c) => c > 0 && c < body.length), body.length];
  for (let i = 0; i + 1 < cuts.length; i++) pipe.onPacketData(h, body.subarray(cuts[i], cuts[i + 1]), cuts[i]!);
  pipe.onPacketEnd(h);
  return true;
}

t.test('a pipe refuses bytes that do not hash to the content id (nothing lands)', async (t) => {
  const sent: Record<string, unknown>[] = [];
  let id = 0;
  const fake = { address: 'fake:1', connected: true, newId: () => ++id, write: (h: Record<string, unknown>) => (sent.push(h), true) } as unknown as PeerClient;
  const pipe = new Pipe(fake);
  const good = Buffer.from('the real bytes');
  const m = smallManifest(good);
  const p = pipe.fetch(m.cid, good.length);
  const bad = Buffer.from('the fake bytes');
  t.equal(sent[0]?.t, 'get', 'asked with get');
  const rid = sent[0]!.id as number;
  t.ok(feed(pipe, rid, 0, bad));
  t.ok(pipe.onMessage({ t: 'done', id: rid }));
  await t.rejects(p, { code: ERROR_CODES.HASH_MISMATCH }, 'refused');
  t.notOk(sent.some((h) => h.t === 'have'), 'and not acknowledged as had');
  // and the right bytes are taken (and acknowledged)
  const p2 = pipe.fetch(m.cid, good.length);
  const rid2 = sent.filter((h) => h.t === 'get')[1]!.id as number;
  feed(pipe, rid2, 0, good);
  pipe.onMessage({ t: 'done', id: rid2 });
  const got = await p2;
  t.ok(got.data.equals(good));
  t.ok(sent.some((h) => h.t === 'have' && h.cid === m.cid), 'have sent for a verified file');
  // a packet outside the file asked for fails the request
  const p3 = pipe.fetch(m.cid, good.length);
  const rid3 = sent.filter((h) => h.t === 'get')[2]!.id as number;
  feed(pipe, rid3, 5, good);
  await t.rejects(p3, { code: ERROR_CODES.BAD_MESSAGE });
  // a packet whose checksum does not match its bytes fails the request at once
  const p4 = pipe.fetch(m.cid, good.length);
  const rid4 = sent.filter((h) => h.t === 'get')[3]!.id as number;
  feed(pipe, rid4, 0, good, { flip: 3 });
  await t.rejects(p4, { code: ERROR_CODES.BAD_CHECKSUM }, 'a bad packet checksum: refused');
  pipe.close(null);
});

t.test('a streaming pipe (pieces as the socket reads them): split at odd offsets, checked per packet, refused when the sum is wrong', async (t) => {
  const sent: Record<string, unknown>[] = [];
  let id = 0;
  const fake = { address: 'fake:1', connected: true, newId: () => ++id, write: (h: Record<string, unknown>) => (sent.push(h), true) } as unknown as PeerClient;
  const pipe = new Pipe(fake);
  const good = randomBytes(prng(5), 70_001);
  const m = smallManifest(good);
  const cuts = [3, 1001]; // pieces of 3, 998 and the rest: odd offsets
  const p = pipe.fetch(m.cid, good.length);
  const rid = sent.filter((h) => h.t === 'get')[0]!.id as number;
  feed(pipe, rid, 0, good.subarray(0, 65_536), { cuts });
  feed(pipe, rid, 65_536, good.subarray(65_536), { cuts });
  pipe.onMessage({ t: 'done', id: rid });
  t.ok((await p).data.equals(good), 'two packets, each in three pieces: the bytes');
  t.ok(sent.some((h) => h.t === 'have'), 'and have');
  const p2 = pipe.fetch(m.cid, good.length);
  const rid2 = sent.filter((h) => h.t === 'get')[1]!.id as number;
  feed(pipe, rid2, 0, good.subarray(0, 65_536), { cuts, flip: 32_768 });
  await t.rejects(p2, { code: ERROR_CODES.BAD_CHECKSUM }, 'a byte changed on the way: the packet sum refuses it');
  const p3 = pipe.fetch(m.cid, good.length);
  const rid3 = sent.filter((h) => h.t === 'get')[2]!.id as number;
  feed(pipe, rid3, 65_536, good.subarray(65_536), { cuts });
  await t.rejects(p3, { code: ERROR_CODES.BAD_MESSAGE }, 'a packet out of order: refused');
  t.notOk(feed(pipe, 9_999, 0, good.subarray(0, 10)), 'a packet for no request: refused (onPacketStart throws, the connection is at fault)');
  pipe.close(null);
});

t.test('a peer that answers busy (or dribbles bytes) forever does not hold a small-file request past its deadline', async (t) => {
  const sent: Record<string, unknown>[] = [];
  let id = 0;
  const fake = { address: 'slow:1', connected: true, newId: () => ++id, write: (h: Record<string, unknown>) => (sent.push(h), true) };
  const pipe = new Pipe(fake, { idleMs: 200, deadlineMs: 500, pauseMs: 60_000 });
  const data = Buffer.alloc(30_000, 7);
  const m = smallManifest(data);
  const started = Date.now();
  // more than PIPE_FILES requests: the rest wait behind the first ones
  const ps = Array.from({ length: 70 }, () => pipe.fetch(m.cid, data.length).then(() => null, (e: { code: string }) => e.code));
  t.ok(pipe.usable(Date.now()), 'usable before');
  // the hostile peer: busy every 100 ms for the first request, one byte at a time for the second
  const rid1 = sent[0]!.id as number;
  const rid2 = sent[1]!.id as number;
  let at = 0;
  const drip = setInterval(() => {
    pipe.onMessage({ t: 'busy', id: rid1 });
    feed(pipe, rid2, at, data.subarray(at, at + 1));
    at++;
  }, 100);
  t.teardown(() => clearInterval(drip));
  const codes = await Promise.all(ps);
  clearInterval(drip);
  const took = Date.now() - started;
  t.ok(took < 2_000, `every request ended (${took} ms; deadline 500 ms, idle 200 ms)`);
  t.ok(codes.every((c) => c === ERROR_CODES.PEER_TIMEOUT), 'each as a timeout (tried again later, from another holder if any)');
  t.ok(sent.some((h) => h.t === 'cancel' && h.id === rid1), 'the busy one is cancelled');
  t.notOk(pipe.usable(Date.now()), 'the pipe takes nothing new for a while');
  t.equal(pipe.load, 0, 'and holds nothing');
  t.equal(sent.filter((h) => h.t === 'get').length, 64, 'the waiting ones were failed, never sent to the stalled peer');
  pipe.close(null);
});

t.test('a pipe takes at most PIPE_MAX_LOAD requests, so one peer cannot hold the whole window', async (t) => {
  const fake = { address: 'full:1', connected: true, newId: (() => { let i = 0; return () => ++i; })(), write: () => true };
  const pipe = new Pipe(fake);
  const data = Buffer.from('x');
  const m = smallManifest(data);
  const ps = Array.from({ length: PIPE_MAX_LOAD }, () => pipe.fetch(m.cid, 1).catch(() => null));
  t.notOk(pipe.usable(Date.now()), `full at ${PIPE_MAX_LOAD}`);
  pipe.close(null);
  await Promise.all(ps);
});

t.test('a file still being written is announced only once it holds still', async (t) => {
  const da = tempDir(t);
  const a = await peer(t, da);
  const file = path.join(da, 'growing.log');
  writeFileSync(file, 'line 0\n');
  let seenWhileWriting = 0;
  // written to for ~1 s, the library looking at it after every write (as its watch would)
  for (let i = 1; i <= 12; i++) {
    appendFileSync(file, `line ${i}\n`);
    await a.node.library.refresh();
    if (a.sync.index.get('growing.log')) seenWhileWriting++;
    await new Promise((r) => setTimeout(r, STABLE_MS / 4));
  }
  t.equal(seenWhileWriting, 0, 'not in the index while it grows');
  await a.node.library.refresh();
  const deadline = Date.now() + 5_000;
  while (!a.sync.index.get('growing.log') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const e = a.sync.index.get('growing.log');
  t.ok(e, 'in the index once it held still');
  t.equal(e?.size, statSync(file).size, 'with its final size');
});

t.test('clearTemps removes only temp files a dead sync left, never a user\'s file or another share\'s', async (t) => {
  const dir = t.testdir({
    'notes': { '.swarm-tmp-sync-ideas.txt': 'mine', '.swarm-tmp-sync-99999999-1': 'stale' },
    [`.swarm-tmp-sync-${process.pid}-7`]: 'ours, in use',
    'nested': { '.swarm': {}, '.swarm-tmp-sync-99999999-2': 'another share\'s' },
  });
  await new Lander(dir).clearTemps();
  t.ok(existsSync(path.join(dir, 'notes', '.swarm-tmp-sync-ideas.txt')), 'a user file with a look-alike name stays');
  t.notOk(existsSync(path.join(dir, 'notes', '.swarm-tmp-sync-99999999-1')), 'a dead process\'s temp file goes');
  t.ok(existsSync(path.join(dir, `.swarm-tmp-sync-${process.pid}-7`)), 'a live process\'s stays');
  t.ok(existsSync(path.join(dir, 'nested', '.swarm-tmp-sync-99999999-2')), 'another share inside this one is not swept');
});

t.test('a folder replaced by a symlink out of the share after an earlier batch: nothing is written through it', async (t) => {
  const [da, db, outside] = [tempDir(t), tempDir(t), tempDir(t)];
  mkdirSync(path.join(da, 'sub'));
  writeFileSync(path.join(da, 'sub', 'one.txt'), 'one');
  const a = await peer(t, da);
  const b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 2);
  t.equal(readFileSync(path.join(db, 'sub', 'one.txt'), 'utf8'), 'one', 'the first batch landed');
  // a local user (or another program) swaps the folder for a symlink to somewhere else
  const { renameSync, symlinkSync } = await import('node:fs');
  renameSync(path.join(db, 'sub'), path.join(db, 'sub-old'));
  symlinkSync(outside, path.join(db, 'sub'));
  writeFileSync(path.join(da, 'sub', 'two.txt'), 'two');
  await converge([a, b], 2);
  t.same(readdirSync(outside), [], 'nothing was written outside the share');
});

t.test('a peer sending one byte to another request every little while cannot hold the pipe\'s requests: the first deadline fails them all', async (t) => {
  const sent: Record<string, unknown>[] = [];
  let id = 0;
  const fake = { address: 'dribbler:1', connected: true, newId: () => ++id, write: (h: Record<string, unknown>) => (sent.push(h), true) };
  // scaled down: idle 40 ms, deadline 100 ms (real: 15 s and 30 s)
  const pipe = new Pipe(fake, { idleMs: 40, deadlineMs: 100, pauseMs: 60_000 });
  const data = Buffer.alloc(30_000, 7);
  const m = smallManifest(data);
  const t0 = Date.now();
  const ends: number[] = [];
  const ps = Array.from({ length: 64 }, () => pipe.fetch(m.cid, data.length).then(() => null, (e: { code: string }) => (ends.push(Date.now() - t0), e.code)));
  const ids = sent.filter((h) => h.t === 'get').map((h) => h.id as number);
  let k = 0;
  // a byte of the next request every 30 ms: the idle clock never fires, each request's deadline starts late
  const drip = setInterval(() => k < ids.length && feed(pipe, ids[k++]!, 0, data.subarray(0, 1)), 30);
  t.teardown(() => clearInterval(drip));
  const codes = await Promise.all(ps);
  clearInterval(drip);
  const held = Math.max(...ends);
  t.ok(codes.every((c) => c === ERROR_CODES.PEER_TIMEOUT), 'every request failed as a timeout');
  t.ok(held < 800, `the last failed after ${held} ms (deadline 100 ms; fails before: ~2,000 ms, one request per deadline)`);
  t.ok(sent.filter((h) => h.t === 'cancel').length >= k, 'each one started is cancelled at the peer');
  pipe.close(null);
});

t.test('a slow honest peer serving requests in turn: the ones queued behind do not time out; late packets of a cancelled request are dropped quietly', async (t) => {
  const sent: Record<string, unknown>[] = [];
  let id = 0;
  const fake = { address: 'slow-honest:1', connected: true, newId: () => ++id, write: (h: Record<string, unknown>) => (sent.push(h), true) };
  const pipe = new Pipe(fake, { idleMs: 200, deadlineMs: 1_000, pauseMs: 60_000 });
  const files = Array.from({ length: 8 }, (_, i) => Buffer.alloc(3_000, i + 1));
  const ps = files.map((f) => pipe.fetch(smallManifest(f).cid, f.length));
  const ids = sent.filter((h) => h.t === 'get').map((h) => h.id as number);
  t.equal(ids.length, 8, 'all asked at once');
  // served one after the other, each in 3 packets 60 ms apart: 1.4 s in all, far past idleMs
  for (const [k, rid] of ids.entries()) {
    for (let at = 0; at < 3_000; at += 1_000) {
      await new Promise((r) => setTimeout(r, 60));
      t.ok(feed(pipe, rid, at, files[k]!.subarray(at, at + 1_000)), `packet ${rid}@${at} taken`);
    }
    pipe.onMessage({ t: 'done', id: rid });
  }
  const got = await Promise.all(ps);
  t.ok(got.every((g, k) => g.data.equals(files[k]!)), 'every file, whole');
  // a request cancelled for a bad packet: what the peer already sent for it is not an error
  const f = Buffer.alloc(3_000, 9);
  const p = pipe.fetch(smallManifest(f).cid, f.length);
  const rid = sent.filter((h) => h.t === 'get').at(-1)!.id as number;
  feed(pipe, rid, 500, f.subarray(0, 1_000)); // out of order: cancelled
  await t.rejects(p, { code: ERROR_CODES.BAD_MESSAGE });
  t.ok(feed(pipe, rid, 0, f.subarray(0, 1_000)), 'a late packet of the cancelled request is taken and dropped');
  t.ok(pipe.onMessage({ t: 'done', id: rid }), 'and so is its done');
  t.notOk(feed(pipe, 9_999, 0, f.subarray(0, 1_000)), 'a packet for a request never made is still refused');
  pipe.close(null);
});
