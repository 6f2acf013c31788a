/**
 * Denial of service, at small scale: each attack of issue 9 against a server whose limits are
 * lowered through options, measuring the bound it must stay under (slots, bytes buffered on either
 * side of the socket, open file handles, a child's RSS), then checking that an honest `get` (or an
 * honest tracker client) is served while the attack runs. The same attacks at the real
 * numbers, against a `swarm serve` with default limits, are in test/hostile/.
 *
 *   1 pipelined list/stat (serve), dir and seed-002 keepalives (tracker), never read; and a
 *     pipeliner that does read, slowly, is paused but never taken for a dribbler
 *   2 idle, silent and 1-byte-per-second connections filling every slot (serve and tracker)
 *   3 get and never read
 *   4 per-address and total caps (serve and tracker; registrations per address)
 *   5 a frame header dribbled a byte per write (the server, FrameDecoder and JsonObjectSplitter)
 *   6 get-and-drop crowds: no file handle outlives its connection
 *   7 a tracker directory larger than a frame
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { serve, type ServeHandle } from '../lib/serve.js';
import type { PeerServer } from '../lib/peer/server.js';
import { get } from '../lib/download/get.js';
import { InlineChunkPool } from '../lib/pool.js';
import { TrackerServer, type TrackerOptions } from '../lib/tracker/server.js';
import { TrackerClient, trackerDirectory, trackerVersions } from '../lib/tracker/client.js';
import { FramedClient } from '../lib/net/framed-client.js';
import { FrameDecoder } from '../lib/protocol/frame.js';
import { JsonObjectSplitter } from '../lib/protocol/json-stream.js';
import { fileHandles } from '../lib/share/file-source.js';
import type { ServerLimits } from '../lib/net/guard.js';
import type { AnnouncedFile } from '../lib/protocol/entries.js';
import { MAX_REQUEST_HEADER_BYTES } from '../lib/peer/session.js';
import { servePeer } from './helpers/procs.js';
import { tempDir } from './helpers/tmp.js';
import { Crowd, dribble, fdCounts, frame, helloBytes, loopbackAddresses, peakDuring, pipelineFor, rssBytes, waitUntil, type Teardown } from './helpers/attack.js';

const MiB = 1 << 20;
const BIG = randomBytes(24 * MiB); // more than loopback's socket buffers hold, so a non-reader blocks
const MID = randomBytes(3 * MiB + 777);
const LONG = 'a-rather-long-file-name-so-that-listing-pages-weigh-something-'.repeat(3);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function makeShare(t: Teardown): string {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'big.bin'), BIG);
  writeFileSync(path.join(dir, 'mid.bin'), MID);
  mkdirSync(path.join(dir, 'listing'));
  for (let i = 0; i < 60; i++) writeFileSync(path.join(dir, 'listing', `${LONG}${i}.txt`), `file ${i}\n`);
  return dir;
}

/** A serving handle whose peer server is there (serve always has one). */
type Served = ServeHandle & { server: PeerServer };

async function startServe(t: Teardown, limits: Partial<ServerLimits> = {}): Promise<Served> {
  const h = await serve(makeShare(t), { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false, limits });
  t.teardown(() => h.close({ graceful: false }));
  if (!h.server) throw new Error('serve started without a peer server');
  return h as Served;
}

/** An honest download from 127.0.0.1; resolves true when the bytes on disk are the file's. */
async function honestGet(t: Teardown, port: number, name = 'mid.bin', expect = MID): Promise<boolean> {
  const out = tempDir(t);
  await get(name, { peers: [`127.0.0.1:${port}`], outDir: out, threads: 0, peerThreads: 0 });
  return readFileSync(path.join(out, name)).equals(expect);
}

async function startTracker(t: Teardown, o: TrackerOptions = {}): Promise<TrackerServer> {
  const tr = new TrackerServer({ port: 0, ...o });
  await tr.listen();
  t.teardown(() => tr.close());
  return tr;
}

const cidOf = (i: number) => i.toString(16).padStart(64, '0');
const announced = (n: number, prefix = 'dir/entry-'): AnnouncedFile[] =>
  Array.from({ length: n }, (_, i) => ({ name: `${prefix}${String(i).padStart(6, '0')}.bin`, mtime: 1_700_000_000 + i, size: 1000 + i, cid: cidOf(i + 1), partial: false }));

/** A TrackerClient registered with `files`; resolves with its first state (registered or not). */
async function registerClient(t: Teardown, port: number, servingPort: number, files: AnnouncedFile[]) {
  const c = new TrackerClient('127.0.0.1', port, servingPort, () => files);
  t.teardown(() => c.close());
  const state = new Promise<{ connected: boolean; message?: string; dropped?: { what: string; reason: string }[] }>((r) => c.once('state', r));
  await c.start();
  return { client: c, state: await state };
}

t.test('1a. serve: one connection pipelines list and stat without reading; unsent replies stay within the window', async (t) => {
  const h = await startServe(t, { sendStallMs: 60_000, idleMs: 60_000 });
  const crowd = new Crowd(t);
  const s = (await crowd.connect(h.port, { localAddress: '127.0.0.2', read: false }))!;
  s.write(helloBytes());
  const gauge = () => {
    const u = h.server.usage();
    return u.unsentReplyBytes + u.bufferedRequestBytes;
  };
  const attack = pipelineFor(s, (i) => frame(i % 2 ? { t: 'list', id: i } : { t: 'stat', id: i, name: `listing/${LONG}${i % 60}.txt` }), 2_000);
  const honest = new Promise((r) => setTimeout(r, 400)).then(() => honestGet(t, h.port));
  const { result, peak } = await peakDuring(gauge, attack);
  t.ok(await honest, 'an honest get during the attack has the right bytes');
  const listReplyBytes = 60 * LONG.length;
  t.comment(`pipelined ${result.requests} requests (${(result.bytes / MiB).toFixed(1)} MiB); replies unread would be ≥ ${((result.requests / 2) * listReplyBytes / MiB).toFixed(0)} MiB; peak held by the server: ${(peak / 1024).toFixed(0)} KiB`);
  t.ok(result.requests > 5_000, 'the attacker got thousands of requests into the socket');
  t.ok(peak < 1.5 * MiB, `unsent replies + buffered requests peaked at ${peak} bytes (< 1.5 MiB)`);
  t.equal(h.server.usage().connections, 1, 'the attacker is still connected (only its reading is paused), the honest ones left');
});

t.test('1b. swarm serve child: pipelined list (peer port), dir and seed-002 keepalives (tracker port), never read: RSS stays bounded', async (t) => {
  const dir = makeShare(t);
  const { proc, port } = await servePeer(t, dir, ['--tracker-port', '0']);
  const ev = await proc.waitFor((o) => o.event === 'serving');
  const trackerPort = Number(String(ev.tracker).split(':').pop());
  t.ok(trackerPort > 0, 'embedded tracker listens');
  const pid = proc.child.pid!;
  // warm up the paths the attack takes (JIT, buffers), then take the baseline
  t.ok(await honestGet(t, port), 'warm-up get');
  const base = rssBytes(pid);
  const crowd = new Crowd(t);
  const lister = (await crowd.connect(port, { read: false }))!;
  lister.write(helloBytes());
  const dirPipe = (await crowd.connect(trackerPort, { read: false }))!;
  dirPipe.write(helloBytes());
  const legacy = (await crowd.connect(trackerPort, { read: false }))!;
  legacy.write(JSON.stringify({ port: 9, files: announced(200, `legacy/${LONG}`).map((f) => ({ name: f.name, mtime: f.mtime })) }));
  const keepalive = Buffer.from(JSON.stringify({ port: 9 }));
  const attack = Promise.all([
    pipelineFor(lister, (i) => frame({ t: 'list', id: i }), 3_000),
    pipelineFor(dirPipe, (i) => frame({ t: 'dir', id: i }), 3_000),
    pipelineFor(legacy, () => keepalive, 3_000),
  ]);
  const honest = new Promise((r) => setTimeout(r, 1_000)).then(() => honestGet(t, port));
  const { result, peak } = await peakDuring(() => rssBytes(pid), attack, 50);
  t.ok(await honest, 'an honest get during the attack has the right bytes');
  const [l, d, k] = result;
  t.comment(`requests in: list ${l.requests}, dir ${d.requests}, keepalive ${k.requests}; RSS ${(base / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB (+${((peak - base) / MiB).toFixed(1)} MiB)`);
  t.ok(l.requests > 5_000 && d.requests > 5_000 && k.requests > 5_000, 'each attacker pipelined thousands of requests');
  t.ok(peak - base < 64 * MiB, `serve's RSS grew ${((peak - base) / MiB).toFixed(1)} MiB (< 64 MiB; unbounded replies grew it by GiB)`);
});

t.test('1c. tracker: pipelined dir and seed-002 keepalives without reading stay within the window; honest clients served', async (t) => {
  const tr = await startTracker(t, { limits: { sendStallMs: 60_000 } });
  const seeded = await registerClient(t, tr.port, 7001, announced(400, `seeded/${LONG}`));
  t.ok(seeded.state.connected, 'a peer with 400 files registered');
  const crowd = new Crowd(t);
  const dirPipe = (await crowd.connect(tr.port, { localAddress: '127.0.0.2', read: false }))!;
  dirPipe.write(helloBytes());
  const legacy = (await crowd.connect(tr.port, { localAddress: '127.0.0.3', read: false }))!;
  legacy.write(JSON.stringify({ port: 9, files: [{ name: 'legacy.txt', mtime: 1_600_000_000 }] }));
  const keepalive = Buffer.from(JSON.stringify({ port: 9 }));
  const gauge = () => {
    const u = tr.usage();
    return u.unsentReplyBytes + u.bufferedRequestBytes;
  };
  const attack = Promise.all([pipelineFor(dirPipe, (i) => frame({ t: 'dir', id: i }), 2_000), pipelineFor(legacy, () => keepalive, 2_000)]);
  const honest = new Promise((r) => setTimeout(r, 800)).then(async () => {
    const listed = await trackerDirectory(`127.0.0.1:${tr.port}`);
    const second = await registerClient(t, tr.port, 7002, announced(3, 'second/'));
    return { listed: listed.entries.length, registered: second.state.connected };
  });
  const { result, peak } = await peakDuring(gauge, attack);
  const h = await honest;
  t.equal(h.listed, 401, 'an honest directory listing during the attack has every entry');
  t.ok(h.registered, 'an honest peer registers during the attack');
  t.comment(`dir requests ${result[0].requests}, keepalives ${result[1].requests}; peak held by the tracker ${(peak / 1024).toFixed(0)} KiB`);
  t.ok(result[0].requests > 5_000 && result[1].requests > 5_000, 'thousands of requests went in');
  // the window (1 MiB) plus one directory page (≤ 512 KiB) plus one read's worth of requests
  t.ok(peak < 1.75 * MiB, `unsent answers + buffered requests peaked at ${peak} bytes (< 1.75 MiB)`);
});

t.test('1d. a client that pipelines faster than it reads, but reads, is paused, not taken for a dribbler (serve and tracker)', async (t) => {
  const limits = { frameMs: 500, sendStallMs: 5_000 };
  const h = await startServe(t, limits);
  const tr = await startTracker(t, { limits });
  await registerClient(t, tr.port, 7001, announced(300, `seeded/${LONG}`));
  const crowd = new Crowd(t);
  const slowReaders = [];
  for (const [port, make] of [
    [h.port, (i: number) => frame({ t: 'list', id: i })],
    [tr.port, (i: number) => frame({ t: 'dir', id: i })],
  ] as const) {
    const s = (await crowd.connect(port, { localAddress: '127.0.0.2' }))!;
    s.write(Buffer.concat([helloBytes(), ...Array.from({ length: 20_000 }, (_, i) => make(i + 1))]));
    slowReaders.push(s);
  }
  // read in bursts: 40 ms on, 160 ms off, for 2.5 s; the replies keep flowing, slowly
  let received = 0;
  for (const s of slowReaders) s.on('data', (d: Buffer) => (received += d.length));
  const stopAt = Date.now() + 2_500;
  while (Date.now() < stopAt) {
    for (const s of slowReaders) s.pause();
    await new Promise((r) => setTimeout(r, 160));
    for (const s of slowReaders) s.resume();
    await new Promise((r) => setTimeout(r, 40));
  }
  t.comment(`slow readers took ${(received / MiB).toFixed(1)} MiB of replies in 2.5 s`);
  t.ok(received > 4 * MiB, 'replies kept flowing');
  t.equal(crowd.closedByServer, 0, 'neither connection was closed');
  t.equal(h.server.guard.counters.timedOut + tr.guard.counters.timedOut, 0, 'no deadline fired: requests already received are not "a frame still arriving"');
});

t.test('2. idle, silent and 1-byte-per-second connections fill every slot: an honest get evicts them, deadlines close the rest', async (t) => {
  const h = await startServe(t, { maxConnections: 8, maxPerIp: 8, handshakeMs: 1_000, frameMs: 1_000, idleMs: 1_000 });
  const crowd = new Crowd(t);
  const silent = await crowd.connectMany(h.port, 3, { localAddress: '127.0.0.2' });
  const afterHello = await crowd.connectMany(h.port, 2, { localAddress: '127.0.0.2', first: helloBytes() });
  const slow = await crowd.connectMany(h.port, 3, { localAddress: '127.0.0.2' });
  const dribbling = dribble(slow, helloBytes(), { intervalMs: 1_000, stopAt: Date.now() + 5_000 });
  t.ok(await waitUntil(() => h.server.usage().connections === 8, 2_000), 'all 8 slots are held by attackers');
  t.equal(silent.length + afterHello.length + slow.length, 8);
  const started = Date.now();
  t.ok(await honestGet(t, h.port), 'an honest get succeeds while every slot was taken');
  t.ok(h.server.guard.counters.evicted >= 1, `evicted ${h.server.guard.counters.evicted} attacker(s) to make room`);
  t.comment(`honest get took ${Date.now() - started} ms; evicted ${h.server.guard.counters.evicted}`);
  t.ok(await waitUntil(() => crowd.open === 0, 5_000), 'every attacker is closed by its deadline or evicted');
  t.ok(h.server.guard.counters.timedOut >= 1, `${h.server.guard.counters.timedOut} closed by a deadline`);
  t.equal(h.server.usage().connections, 0, 'no slot is held afterwards');
  const sent = await dribbling;
  t.ok(Math.max(...sent) <= 6, `the slow ones got at most ${Math.max(...sent)} bytes in before being closed`);
});

t.test('2b. tracker: silent and 1-byte-per-second connections fill every slot: an honest query evicts one, deadlines close the rest', async (t) => {
  const tr = await startTracker(t, { limits: { maxConnections: 8, maxPerIp: 8, handshakeMs: 1_000, frameMs: 1_000, idleMs: 1_000 } });
  const crowd = new Crowd(t);
  await crowd.connectMany(tr.port, 4, { localAddress: '127.0.0.2' });
  const slow = await crowd.connectMany(tr.port, 4, { localAddress: '127.0.0.2' });
  const dribbling = dribble(slow, helloBytes(), { intervalMs: 1_000, stopAt: Date.now() + 5_000 });
  t.ok(await waitUntil(() => tr.guard.size === 8, 2_000), 'all 8 slots are held by attackers');
  const listed = await trackerDirectory(`127.0.0.1:${tr.port}`);
  t.same(listed.entries, [], 'an honest directory query is answered while every slot was taken');
  t.ok(tr.guard.counters.evicted >= 1, `evicted ${tr.guard.counters.evicted} attacker(s) to make room`);
  t.ok(await waitUntil(() => crowd.open === 0, 5_000), 'every attacker is closed by its deadline or evicted');
  t.ok(tr.guard.counters.timedOut >= 1, `${tr.guard.counters.timedOut} closed by a deadline`);
  t.equal(tr.guard.size, 0, 'no slot is held afterwards');
  await dribbling;
});

t.test('3. getters that never read do not hold slots past sendStallMs; an honest get is served meanwhile', async (t) => {
  const h = await startServe(t, { maxConnections: 8, maxPerIp: 8, sendStallMs: 1_500 });
  const cid = h.library.manifest('big.bin')!.cid;
  const crowd = new Crowd(t);
  const getters = await crowd.connectMany(h.port, 8, { localAddress: '127.0.0.2', read: false, first: Buffer.concat([helloBytes(), frame({ t: 'get', id: 1, cid, from: 0, to: 24 })]) });
  t.equal(getters.length, 8);
  t.ok(await waitUntil(() => h.server.usage().openReaders === 8 && h.server.slots!.inTransit > 0, 3_000), 'all 8 are being served, each with an open file');
  // under contention the upload policy sends at most UPLOAD_SLOTS chunks at once beside each
  // connection's first chunk (which goes at once: a newcomer is never queued behind non-readers),
  // and a peer that never says `have` holds its slot only until the ack deadline
  t.ok(h.server.slots!.inTransit <= 4 + getters.length, `at most 4 chunks in transit at once beside one first chunk per connection (${h.server.slots!.inTransit})`);
  const { peak } = await peakDuring(() => h.server.usage().unsentReplyBytes, new Promise((r) => setTimeout(r, 600)));
  t.comment(`unsent bytes held for 8 non-readers: ${(peak / MiB).toFixed(2)} MiB`);
  // a connection's first pieces are 256 KiB: a client that never reads pins one piece in flight
  t.ok(peak <= 8 * 320 * 1024, `unsent data for non-readers peaked at ${(peak / MiB).toFixed(2)} MiB (≤ 320 KiB each: the piece being sent)`);
  const started = Date.now();
  t.ok(await honestGet(t, h.port), 'an honest get succeeds while non-readers held every slot');
  t.comment(`honest get took ${Date.now() - started} ms; evicted ${h.server.guard.counters.evicted}, timed out ${h.server.guard.counters.timedOut}`);
  // non-readers cannot see the close (they do not read), so the server's gauges tell
  t.ok(await waitUntil(() => h.server.usage().connections === 0, 4_000), 'every non-reader is closed (send stall or eviction)');
  t.equal(h.server.guard.counters.evicted + h.server.guard.counters.timedOut, 8, 'all 8 by the guard');
  t.ok(await waitUntil(() => h.server.usage().openReaders === 0 && fileHandles().open === 0, 2_000), 'their files are closed');
});

t.test('4a. serve: one address cannot exceed maxPerIp, all addresses together not maxConnections; 127.0.0.1 still gets in', async (t) => {
  const h = await startServe(t, { maxConnections: 16, maxPerIp: 4 });
  const crowd = new Crowd(t);
  const attackers = loopbackAddresses(5, 2);
  const peak = { total: 0, one: 0 };
  const watch = setInterval(() => {
    peak.total = Math.max(peak.total, h.server.usage().connections);
    for (const a of attackers) peak.one = Math.max(peak.one, h.server.guard.countOf(a));
  }, 2);
  t.teardown(() => clearInterval(watch));
  await crowd.connectMany(h.port, 12, { localAddress: '127.0.0.2', first: helloBytes(), concurrency: 12 });
  t.ok(await waitUntil(() => crowd.closedByServer >= 8, 2_000), `${crowd.closedByServer} connections from 127.0.0.2 over the cap were refused`);
  t.equal(h.server.guard.countOf('127.0.0.2'), 4, 'exactly maxPerIp from 127.0.0.2');
  t.ok(h.server.guard.counters.refusedPerIp >= 8);
  // four more addresses: 5 × 4 = 20 wanting to stay, 16 slots
  await crowd.connectMany(h.port, 24, { localAddresses: attackers.slice(1), first: helloBytes(), concurrency: 24 });
  t.ok(await waitUntil(() => h.server.usage().connections === 16, 2_000), 'the server fills up to its total cap');
  t.ok(await honestGet(t, h.port), 'an honest get from 127.0.0.1 gets in (evicting an idle attacker)');
  clearInterval(watch);
  t.comment(`peak connections ${peak.total}, peak from one address ${peak.one}; refused per address ${h.server.guard.counters.refusedPerIp}, evicted ${h.server.guard.counters.evicted}`);
  t.ok(peak.total <= 16, `never more than 16 connections (${peak.total})`);
  t.ok(peak.one <= 4, `never more than 4 from one attacking address (${peak.one})`);
  t.ok(h.server.guard.counters.evicted >= 1, 'the honest client took the slot of an idle one');
});

t.test('4b. tracker: per-address and total connection caps, registrations per address; an honest peer still registers', async (t) => {
  const tr = await startTracker(t, { limits: { maxConnections: 16, maxPerIp: 4 }, registry: { maxPeersPerIp: 2 } });
  const crowd = new Crowd(t);
  await crowd.connectMany(tr.port, 12, { localAddress: '127.0.0.2', first: helloBytes(), concurrency: 12 });
  t.ok(await waitUntil(() => crowd.closedByServer >= 8, 2_000), `${crowd.closedByServer} over the per-address cap refused`);
  t.equal(tr.guard.countOf('127.0.0.2'), 4);
  crowd.destroy();
  t.ok(await waitUntil(() => tr.guard.size === 0, 2_000), 'slots freed when they leave');
  // registrations per address: 4 connections from 127.0.0.3 may connect, only 2 may register
  const results: string[] = [];
  for (let i = 0; i < 4; i++) {
    const c = new FramedClient('127.0.0.1', tr.port, { side: 'trackerReply', localAddress: '127.0.0.3' });
    t.teardown(() => c.destroy());
    await c.connect();
    results.push(await c.request({ t: 'register', port: 7100 + i, files: [{ name: `x${i}`, mtime: 1, size: 1, cid: cidOf(i + 1) }] }, 'ok').then(() => 'ok', (e) => e.code));
  }
  t.same(results, ['ok', 'ok', 'SWARM_ERR_LIMIT', 'SWARM_ERR_LIMIT'], 'the third registration from one address is refused');
  // total cap: 5 addresses × 4
  let peak = 0;
  const watch = setInterval(() => (peak = Math.max(peak, tr.guard.size)), 2);
  t.teardown(() => clearInterval(watch));
  const crowd2 = new Crowd(t);
  await crowd2.connectMany(tr.port, 24, { localAddresses: loopbackAddresses(5, 4), first: helloBytes(), concurrency: 24 });
  t.ok(await waitUntil(() => tr.guard.size === 16, 2_000), 'the tracker fills up to its total cap');
  const honest = await registerClient(t, tr.port, 7200, announced(5, 'honest/'));
  t.ok(honest.state.connected, `an honest peer from 127.0.0.1 registers (${honest.state.message ?? 'ok'})`);
  t.same((await trackerVersions(`127.0.0.1:${tr.port}`, 'honest/000000.bin')).versions.map((v) => v.holders), [[{ ip: '127.0.0.1', port: 7200 }]], 'and is listed');
  clearInterval(watch);
  t.ok(peak <= 16, `never more than 16 connections (${peak})`);
});

/** Heap and buffer bytes in use once garbage is collected (array buffers are swept concurrently). */
async function settledBytes(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Heap and buffer bytes a run of `fn` leaves reachable. */
async function retainedBy(fn: () => void): Promise<number> {
  const before = await settledBytes();
  fn();
  return (await settledBytes()) - before;
}

t.test('5a. a frame dribbled one byte per write on 8 connections: the server holds what it received, not an object per byte', async (t) => {
  const h = await startServe(t, { frameMs: 60_000, handshakeMs: 60_000 });
  const crowd = new Crowd(t);
  // the 1 MiB header: refused as soon as its length arrives
  const huge = Buffer.alloc(8);
  huge.writeUInt32BE(MiB, 0);
  const hugeOnes = await crowd.connectMany(h.port, 8, { localAddress: '127.0.0.2' });
  const hugeSent = await dribble(hugeOnes, Buffer.concat([huge, Buffer.alloc(MiB, 0x20)]), { stopAt: Date.now() + 2_000 });
  t.ok(await waitUntil(() => hugeOnes.every((s) => s.destroyed), 2_000), 'a declared 1 MiB header is refused at its length');
  t.ok(Math.max(...hugeSent) < 64 << 10, `at most ${Math.max(...hugeSent)} bytes went in before the close`);
  // the largest header a request may have, dribbled: a hello padded to just under the limit
  const pad = MAX_REQUEST_HEADER_BYTES - 200;
  const json = Buffer.from(JSON.stringify({ t: 'hello', v: 2, peer: 'a77ac4e2a77ac4e2', caps: [], pad: 'x'.repeat(pad) }));
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(json.length, 0);
  const hello = Buffer.concat([prefix, json]);
  const slow = await crowd.connectMany(h.port, 8, { localAddress: '127.0.0.3' });
  const before = await settledBytes();
  const partial = dribble(slow, hello.subarray(0, hello.length - 1), { writes: 4, stopAt: Date.now() + 8_000 });
  const { peak } = await peakDuring(() => h.server.usage().bufferedRequestBytes, partial);
  const sent = (await partial).reduce((a, b) => a + b, 0);
  await waitUntil(() => h.server.usage().bufferedRequestBytes >= sent - 8 * 8, 1_000);
  // the whole process (server and attackers): only a rough bound, the decoder's own is 5b's
  const grown = (await settledBytes()) - before;
  t.comment(`dribbled ${sent} bytes on 8 connections; buffered ${h.server.usage().bufferedRequestBytes}; heap+buffers grew ${grown} bytes (${(grown / sent).toFixed(2)} per byte)`);
  // each decoder has consumed its frame's 8-byte length prefix; the rest it holds
  t.equal(h.server.usage().bufferedRequestBytes, sent - 8 * 8, 'buffered bytes are exactly the bytes received (less the parsed prefixes)');
  t.ok(peak <= sent, 'never more');
  t.ok(grown < 8 * sent + MiB, `process memory grew ${grown} bytes for ${sent} received (< 8 per byte + 1 MiB)`);
  t.ok(await honestGet(t, h.port), 'an honest get works meanwhile');
  for (const s of slow) s.write(hello.subarray(hello.length - 1));
  t.ok(await waitUntil(() => h.server.usage().bufferedRequestBytes === 0, 2_000), 'the completed frames are consumed');
});

t.test('5b. FrameDecoder fed a 1 MiB header one byte at a time: memory proportional to bytes received, none kept afterwards', async (t) => {
  const json = Buffer.from(JSON.stringify({ t: 'x', pad: 'y'.repeat(MiB - 20) }));
  const src = Buffer.alloc(8 + json.length);
  src.writeUInt32BE(json.length, 0);
  json.copy(src, 8);
  let messages = 0;
  const d = new FrameDecoder({ onMessage: () => messages++ }, { maxHeaderBytes: 2 * MiB });
  const stop = src.length - 1024;
  const held = await retainedBy(() => {
    for (let i = 0; i < stop; i++) d.push(src.subarray(i, i + 1));
  });
  t.equal(d.buffered, stop - 8, 'holds every byte after the parsed prefix');
  t.comment(`FrameDecoder: ${stop} one-byte pushes hold ${held} bytes (${(held / stop).toFixed(2)} per byte)`);
  t.ok(held < 2.5 * stop, `< 2.5 bytes held per byte received (${(held / stop).toFixed(2)}; an object per read was ~100)`);
  const released = await retainedBy(() => {
    for (let i = stop; i < src.length; i++) d.push(src.subarray(i, i + 1));
  });
  t.equal(messages, 1, 'the frame decodes whole');
  t.equal(d.buffered, 0);
  // (most, not all: the decoded 1 MiB message and GC timing move the figure; 86% was measured
  // once under load. A decoder that kept its buffer would release nothing.)
  t.ok(released < -0.7 * held, `between frames the decoder lets go of what it held (${released} bytes of ${held})`);
});

t.test('5c. JsonObjectSplitter fed a 1 MiB object one byte at a time: memory proportional to bytes received', async (t) => {
  const obj = Buffer.from(JSON.stringify({ port: 1, pad: 'z'.repeat(MiB - 30) }));
  let objects = 0;
  const j = new JsonObjectSplitter(() => objects++, 2 * MiB);
  const stop = obj.length - 1024;
  const held = await retainedBy(() => {
    for (let i = 0; i < stop; i++) j.push(obj.subarray(i, i + 1));
  });
  t.equal(j.buffered, stop);
  t.comment(`JsonObjectSplitter: ${stop} one-byte pushes hold ${held} bytes (${(held / stop).toFixed(2)} per byte)`);
  t.ok(held < 2.5 * stop, `< 2.5 bytes held per byte received (${(held / stop).toFixed(2)})`);
  const released = await retainedBy(() => {
    for (let i = stop; i < obj.length; i++) j.push(obj.subarray(i, i + 1));
  });
  t.equal(objects, 1);
  t.equal(j.buffered, 0);
  t.ok(released < -0.7 * held, `after the object the splitter lets go of what it held (${released} bytes of ${held}; most, not all: GC timing moves it)`);
});

t.test('6. 300 clients send get (framed or seed-002) and drop at once: no file handle outlives its connection', async (t) => {
  const h = await startServe(t, { maxConnections: 400, maxPerIp: 400 });
  const cid = h.library.manifest('big.bin')!.cid;
  t.ok(await honestGet(t, h.port), 'warm-up get');
  const base = fdCounts();
  const opened = fileHandles().opened;
  const crowd = new Crowd(t);
  const framed = Buffer.concat([helloBytes(), frame({ t: 'get', id: 1, cid, from: 0, to: 24 })]);
  const legacy = Buffer.from('big.bin\n');
  const sources = loopbackAddresses(3, 2);
  let peak = 0;
  const watch = setInterval(() => (peak = Math.max(peak, fileHandles().open)), 1);
  t.teardown(() => clearInterval(watch));
  const attack = Promise.all(
    Array.from({ length: 300 }, (_, i) =>
      crowd.connect(h.port, { localAddress: sources[i % 3]! }).then(async (s) => {
        if (!s) return;
        let got = 0;
        s.on('data', (d: Buffer) => (got += d.length));
        s.write(i % 4 === 3 ? legacy : framed);
        // drop at every moment of a request's life: at once, after a while, once bytes flow
        if (i % 3 === 1) await new Promise((r) => setTimeout(r, i % 40));
        if (i % 3 === 2) await waitUntil(() => got > 100_000, 2_000, 1);
        crowd.drop(s, i % 2 === 0);
      }),
    ),
  );
  const honest = new Promise((r) => setTimeout(r, 50)).then(() => honestGet(t, h.port));
  await attack;
  t.ok(await honest, 'an honest get during the crowd has the right bytes');
  t.ok(await waitUntil(() => h.server.usage().connections === 0, 5_000), 'every dropped connection is gone');
  t.ok(await waitUntil(() => fileHandles().open === 0 && h.server.usage().openReaders === 0, 5_000), `every file handle closed (${fileHandles().open} open)`);
  clearInterval(watch);
  t.ok(await waitUntil(() => fdCounts().fds <= base.fds, 5_000), `descriptors back to baseline (${fdCounts().fds} now, ${base.fds} before)`);
  const n = fileHandles().opened - opened;
  t.comment(`the crowd made the server open ${n} file handles (peak ${peak} at once); fds before ${base.fds}, after ${fdCounts().fds}`);
  t.ok(n >= 100, 'most requests got as far as opening the file');
});

t.test('7. a tracker directory larger than a frame: 20,000 entries from one client, paged both ways', async (t) => {
  const tr = await startTracker(t);
  const files = announced(20_000, `big-directory/${LONG}`);
  files.splice(777, 0, { name: 'back\\slash.bin', mtime: 1, size: 1, cid: cidOf(999_999), partial: false });
  const started = Date.now();
  const { state } = await registerClient(t, tr.port, 7300, files);
  t.ok(state.connected, 'registered');
  t.same(state.dropped?.map((d) => d.what), ['back\\slash.bin'], 'only the backslash entry is dropped');
  t.equal(tr.registry.entryCount, 20_000, 'every other entry is in');
  const listed = await trackerDirectory(`127.0.0.1:${tr.port}`);
  t.equal(listed.entries.length, 20_000, 'the directory lists them all');
  t.equal(new Set(listed.entries.map(([n]) => n)).size, 20_000, 'each once');
  t.ok(JSON.stringify(listed.entries).length > 2 * MiB, 'more than a 1 MiB frame could carry in one answer');
  const second = await registerClient(t, tr.port, 7301, announced(2, 'second-peer/'));
  t.ok(second.state.connected, 'a second honest peer registers');
  t.same((await trackerVersions(`127.0.0.1:${tr.port}`, 'second-peer/000001.bin')).versions.map((v) => v.holders), [[{ ip: '127.0.0.1', port: 7301 }]], 'and is listed');
  t.comment(`20,000 entries registered and listed in ${Date.now() - started} ms`);
});
