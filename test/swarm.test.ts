/**
 * A real swarm on loopback (issue 10): every downloader serves what it has verified, and only that.
 *
 *   - three peers: a seeder that shows each downloader a disjoint part and sends each chunk once,
 *     then leaves; two sharing downloaders (SwarmNode, found through a real tracker) finish
 *     byte-identical, each with chunks it can only have got from the other; and the same with a
 *     seeder that leaves before the tracker is asked again;
 *   - a partial holder refuses chunks it has not verified (its part file corrupted there), serves
 *     the ones it has, and a whole download from it never receives a corrupted byte;
 *   - version handshake with older peers: a version-1 client (no hello) and a version-1 server
 *     (hello refused as unknown) both end in a clear SWARM_ERR_VERSION;
 *   - a liar registered as a partial holder (full bitfield, wrong bytes with valid checksums) is
 *     dropped and the honest downloaders finish;
 *   - a share that downloads into its own folder adopts the file without hashing it again;
 *   - a partial holder that completes can be opened at every moment of the handover.
 * Everything runs in this process on 127.0.0.1 (the CLI is tested in swarm-cli.test.ts).
 */
import t from 'tap';
import net from 'node:net';
import { writeFileSync, readFileSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { SwarmNode } from '../lib/node/node.js';
import { serve } from '../lib/serve.js';
import { TrackerServer } from '../lib/tracker/server.js';
import { get, type DownloadHost } from '../lib/download/get.js';
import type { ChunkSource } from '../lib/peer/source.js';
import { newPeerId } from '../lib/net/identity.js';
import { PeerClient } from '../lib/peer/client.js';
import { listPeer } from '../lib/listing.js';
import { chunkBytesFor, chunkCount } from '../lib/chunking.js';
import { chunkHash } from '../lib/hashing.js';
import { makeManifest, type Manifest } from '../lib/manifest.js';
import { FrameDecoder, encodeFrameBuffer, type Header } from '../lib/protocol/frame.js';
import { MIN_CHUNK_BYTES, PART_SUFFIX } from '../lib/constants.js';
import { ERROR_CODES } from '../lib/errors.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { startFakeSeeder } from './helpers/fake-seeder.js';
import { registerFake, startFakePeer } from './helpers/fake-peer.js';
import { fetchRange } from './helpers/peer-fetch.js';

const MiB = MIN_CHUNK_BYTES;
type T = { teardown(fn: () => unknown): void };

function manifestOf(data: Buffer): Manifest {
  const chunkBytes = chunkBytesFor(data.length);
  const hashes: Buffer[] = [];
  for (let i = 0; i < chunkCount(data.length, chunkBytes); i++) hashes.push(chunkHash(data.subarray(i * chunkBytes, Math.min(data.length, (i + 1) * chunkBytes))));
  return makeManifest(data.length, chunkBytes, Buffer.concat(hashes));
}

async function startTracker(t: T): Promise<TrackerServer> {
  const tr = new TrackerServer({ port: 0, host: '127.0.0.1' });
  await tr.listen();
  t.teardown(() => tr.close());
  return tr;
}

/** A peer that shares what it downloads (no folder), on the main thread. */
async function startNode(t: T, opts: Parameters<typeof SwarmNode.start>[0] = {}): Promise<SwarmNode> {
  const n = await SwarmNode.start({ host: '127.0.0.1', port: 0, threads: 0, ...opts });
  t.teardown(() => n.close({ graceful: false }));
  return n;
}

/** Bytes of the chunks of `m` in `chunks`. */
function bytesOf(m: Manifest, chunks: Iterable<number>): number {
  let n = 0;
  for (const c of chunks) n += Math.min(m.chunkBytes, m.size - c * m.chunkBytes);
  return n;
}

/** Poll `check` every 20 ms until it holds (false after `ms`): for states no event reports. */
async function until(check: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

t.test('three peers: a seeder sends each chunk once and leaves; two downloaders finish from each other', async (t) => {
  const name = 'crowd.bin';
  const mtime = 1_700_000_100;
  const src = tempDir(t);
  const data = randomBytes(prng(1001), 24 * MiB + 12_345);
  writeFileSync(path.join(src, name), data);
  const m = manifestOf(data);
  const chunks = chunkCount(m.size, m.chunkBytes);
  const tr = await startTracker(t);
  const tracker = `127.0.0.1:${tr.port}`;
  const a = await startNode(t, { tracker });
  const b = await startNode(t, { tracker });
  // the seeder's last chunk waits until each downloader was dialled by the other (tracker
  // peers-of, then a connection): only peers connect to a node here, so a connection is the other
  // downloader. (Without this wait see the next test.)
  const dialled = (n: SwarmNode) => (n.server?.usage().connections ?? 0) > 0;
  const seeder = await startFakeSeeder(path.join(src, name), m, { name, mtime, parts: 2, beforeLast: async () => void (await until(() => dialled(a) && dialled(b), 20_000)) });
  t.teardown(() => seeder.close());
  const reg = await registerFake(tr.port, seeder.port, [{ name, mtime, size: m.size, cid: m.cid }]);
  t.teardown(() => reg.close());

  const outA = tempDir(t);
  const outB = tempDir(t);
  const pa = a.get(name, { tracker, outDir: outA, peerThreads: 0 });
  const pb = b.get(name, { tracker, outDir: outB, peerThreads: 0 });
  const [ra, rb] = await within(Promise.all([pa, pb]), 30_000, 'both downloads');

  t.ok(readFileSync(path.join(outA, name)).equals(data), 'A: byte-identical');
  t.ok(readFileSync(path.join(outB, name)).equals(data), 'B: byte-identical');
  await within(seeder.left, 5_000, 'the seeder leaving');
  t.same(seeder.refused, [], 'nobody asked the seeder for a chunk it did not show, or twice');
  const sentChunks = seeder.log.map((s) => s.chunk).sort((x, y) => x - y);
  t.same(sentChunks, [...Array(chunks).keys()], 'the seeder sent every chunk exactly once');
  t.same([...seeder.shown.keys()].sort(), [a.peerId, b.peerId].sort(), 'the seeder split its chunks between the two downloaders');
  const fromSeeder = (n: SwarmNode) => new Set(seeder.log.filter((s) => s.peer === n.peerId).map((s) => s.chunk));
  const seedA = fromSeeder(a);
  const seedB = fromSeeder(b);
  t.ok(seedA.size > 0 && seedB.size > 0, `the seeder sent ${seedA.size} chunks to A, ${seedB.size} to B`);
  // what A did not get from the seeder it can only have got from B, and the other way round
  const aFromB = chunks - seedA.size;
  const bFromA = chunks - seedB.size;
  t.ok(aFromB > 0 && bFromA > 0, `A got ${aFromB} chunks from B, B got ${bFromA} from A`);
  const upA = a.uploadStats().bytes;
  const upB = b.uploadStats().bytes;
  t.ok(upA >= bytesOf(m, [...Array(chunks).keys()].filter((c) => !seedB.has(c))), `A uploaded ${upA} bytes: at least what B lacked from the seeder`);
  t.ok(upB >= bytesOf(m, [...Array(chunks).keys()].filter((c) => !seedA.has(c))), `B uploaded ${upB} bytes: at least what A lacked from the seeder`);
  t.equal(ra.badChunks + rb.badChunks, 0, 'no chunk failed its hash');
  t.equal(ra.fetchedChunks, chunks);
  t.equal(rb.fetchedChunks, chunks);
});

t.test('the same with a seeder at full speed: it is gone before the tracker is asked again', async (t) => {
  const name = 'fast.bin';
  const mtime = 1_700_000_200;
  const src = tempDir(t);
  const data = randomBytes(prng(1002), 12 * MiB + 1);
  writeFileSync(path.join(src, name), data);
  const m = manifestOf(data);
  const tr = await startTracker(t);
  const tracker = `127.0.0.1:${tr.port}`;
  const seeder = await startFakeSeeder(path.join(src, name), m, { name, mtime, parts: 2 });
  t.teardown(() => seeder.close());
  const reg = await registerFake(tr.port, seeder.port, [{ name, mtime, size: m.size, cid: m.cid }]);
  t.teardown(() => reg.close());
  const nodes = [await startNode(t, { tracker }), await startNode(t, { tracker })];
  const outs = nodes.map(() => tempDir(t));
  const results = await within(Promise.allSettled(nodes.map((n, i) => n.get(name, { tracker, outDir: outs[i]!, peerThreads: 0 }))), 30_000, 'both downloads');
  await within(seeder.left, 5_000, 'the seeder leaving');
  results.forEach((r, i) => {
    t.equal(r.status, 'fulfilled', `downloader ${i} finished${r.status === 'rejected' ? ` (it failed: ${(r.reason as Error).message})` : ''}`);
    if (r.status === 'fulfilled') t.ok(readFileSync(path.join(outs[i]!, name)).equals(data), `downloader ${i}: byte-identical`);
  });
});

t.test('a partial holder refuses chunks it has not verified, even with bytes on disk, and never serves a corrupted byte', async (t) => {
  const name = 'partial.bin';
  const src = tempDir(t);
  const data = randomBytes(prng(2002), 8 * MiB + 4321);
  writeFileSync(path.join(src, name), data);
  const m = manifestOf(data);
  const chunks = chunkCount(m.size, m.chunkBytes);
  const chunk = (c: number) => data.subarray(c * m.chunkBytes, Math.min(m.size, (c + 1) * m.chunkBytes));
  // the holder's only source: 3 chunks, then nothing until released (busy meanwhile)
  const seeder = await startFakeSeeder(path.join(src, name), m, { name, parts: 1, gate: 3, leaveWhenSent: false });
  t.teardown(() => seeder.close());
  const h = await startNode(t, { noTracker: true });
  const outH = tempDir(t);
  const ph = h.get(name, { peers: [`127.0.0.1:${seeder.port}`], outDir: outH, peerThreads: 0, stallMs: 60_000, requestTimeoutMs: 60_000 });
  const verified = () => {
    const src = h.sources.byCid(m.cid);
    return src ? [...Array(chunks).keys()].filter((c) => src.has(c)) : [];
  };
  t.ok(await until(() => verified().length === 3), 'the holder verified the 3 chunks the seeder let through');
  const have = verified();
  const missing = [...Array(chunks).keys()].filter((c) => !have.includes(c));
  // bytes on disk where nothing is verified: a holder that served from the part file would send these
  const poison = 0xee;
  const fd = openSync(path.join(outH, name + PART_SUFFIX), 'r+');
  for (const c of missing) writeSync(fd, Buffer.alloc(chunk(c).length, poison), 0, chunk(c).length, c * m.chunkBytes);
  closeSync(fd);
  t.same(verified(), have, 'still only those 3 (the seeder holds the rest)');

  for (const c of missing) {
    const r = await fetchRange(h.port, m.cid, c, c + 1);
    t.equal(r.error?.code, ERROR_CODES.NOT_HAVE, `unverified chunk ${c}: SWARM_ERR_NOT_HAVE`);
    t.equal(r.bytes.length + r.packets, 0, `unverified chunk ${c}: not one byte`);
  }
  // a range of a verified and an unverified chunk is refused whole
  const lo = [...Array(chunks - 1).keys()].find((c) => have.includes(c) !== have.includes(c + 1))!;
  const rm = await fetchRange(h.port, m.cid, lo, lo + 2);
  t.equal(rm.error?.code, ERROR_CODES.NOT_HAVE, `range ${lo}..${lo + 1} (${have.includes(lo) ? 'verified, unverified' : 'unverified, verified'}): refused`);
  t.equal(rm.bytes.length, 0, 'and no byte of its verified chunk either');
  for (const c of have) {
    const r = await fetchRange(h.port, m.cid, c, c + 1);
    t.equal(r.error, null, `verified chunk ${c}: served`);
    t.ok(r.bytes.equals(chunk(c)) && r.badChecksums === 0, `verified chunk ${c}: the right bytes`);
  }

  // a second peer downloads the whole file from the partial holder alone, while the holder gets
  // the rest; a prober asks for a poisoned chunk all along
  const outD = tempDir(t);
  const pd = get(name, { peers: [`127.0.0.1:${h.port}`], outDir: outD, threads: 0, peerThreads: 0 });
  const warnings: string[] = [];
  pd.download.on('warning', (e) => warnings.push(e.message));
  pd.download.on('peer-dropped', (e) => warnings.push(`dropped: ${e.reason}`));
  const probed = missing[missing.length - 1]!;
  const probes = { refused: 0, right: 0, gone: 0, what: [] as string[] };
  let probing = true;
  const prober = (async () => {
    while (probing) {
      const r = await fetchRange(h.port, m.cid, probed, probed + 1);
      if (r.error?.code === ERROR_CODES.NOT_HAVE && r.bytes.length === 0) probes.refused++;
      else if (!r.error && r.bytes.equals(chunk(probed))) probes.right++;
      else if (r.error?.code === ERROR_CODES.NOT_FOUND && r.bytes.length === 0) probes.gone++; // see the completion test below
      else {
        const poisoned = r.bytes.filter((b) => b === poison).length;
        probes.what.push(`${r.error ? `${r.error.code}: ${r.error.message}` : 'no error'}; ${r.bytes.length} bytes, ${poisoned} of them 0x${poison.toString(16)}`);
      }
      await new Promise((res) => setTimeout(res, 25));
    }
  })();
  // once the second peer has what the holder had, let the rest through
  await new Promise<void>((resolve) => pd.download.on('progress', (e) => e.bytes >= bytesOf(m, have) && resolve()));
  seeder.release();
  const [rh, rd] = await within(Promise.all([ph, pd]), 20_000, 'both downloads');
  probing = false;
  await prober;
  t.ok(readFileSync(path.join(outD, name)).equals(data), 'the second peer: byte-identical');
  t.ok(readFileSync(path.join(outH, name)).equals(data), 'the holder: byte-identical (its verified writes replaced the poison)');
  t.equal(rd.badChunks, 0, 'no chunk the second peer received failed its hash: no poisoned byte reached it');
  t.equal(rd.badPackets, 0, 'no bad packet');
  t.equal(rd.fetchedChunks, chunks, 'the second peer fetched every chunk');
  t.same([...new Set(seeder.log.map((x) => x.peer))], [h.peerId], 'and the seeder sent only to the holder: all of them came from the partial holder');
  t.same(warnings, [], 'no warning, no drop');
  t.equal(rh.fetchedChunks, chunks);
  t.same(probes.what, [], `prober: ${probes.refused} refusals, ${probes.right} right answers, ${probes.gone} "gone" as the holder completed; never a byte of anything else`);
  t.ok(probes.refused > 0, 'the prober was refused while the chunk was unverified');
});

/** A server that speaks like swarm 0.1 (protocol 1): it does not know `hello`, refuses it, hangs up. */
async function startVersion1Server(t: T): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const d = new FrameDecoder({
      onPacket() {},
      onMessage(h) {
        // protocol 1's session: an unknown type is a protocol error, answered without an id, then closed
        if (h.t === 'hello') socket.end(encodeFrameBuffer({ t: 'error', code: 'SWARM_ERR_UNKNOWN_MESSAGE', message: 'unknown message type "hello"' }));
      },
    });
    socket.on('data', (b: Buffer) => {
      try {
        d.push(b);
      } catch {
        socket.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return (server.address() as net.AddressInfo).port;
}

/** What a current server answers a client that sends `first` (and nothing else) first. */
async function answerTo(port: number, first: Header): Promise<{ frames: Header[]; closed: boolean }> {
  const frames: Header[] = [];
  const socket = net.connect({ host: '127.0.0.1', port });
  const d = new FrameDecoder({ onPacket() {}, onMessage: (h) => void frames.push(h) });
  socket.on('data', (b: Buffer) => d.push(b));
  socket.write(encodeFrameBuffer(first));
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5_000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on('error', () => {});
  });
  socket.destroy();
  return { frames, closed };
}

t.test('old peers: a version-1 client and a version-1 server each get a clear SWARM_ERR_VERSION', async (t) => {
  const n = await startNode(t, { noTracker: true });
  // protocol 1's first requests (no hello): `list` decodes in protocol 2 too
  const list = await answerTo(n.port, { t: 'list', id: 1 });
  t.ok(list.closed, 'list first: the server hangs up');
  t.equal(list.frames.length, 1, 'one frame before it does');
  t.equal(list.frames[0]?.t, 'error');
  t.equal(list.frames[0]?.code, ERROR_CODES.VERSION, 'list first: SWARM_ERR_VERSION');
  t.match(String(list.frames[0]?.message), /hello.*protocol 2|protocol 2.*hello/, `says why: ${String(list.frames[0]?.message)}`);

  // protocol 1's get named the file and carried a 16-hex-digit (xxhash64) content id
  const v1get = { t: 'get', id: 1, name: 'f.bin', cid: '0123456789abcdef', from: 0, to: 1 };
  const g = await answerTo(n.port, v1get);
  t.ok(g.closed, 'protocol-1 get first: the server hangs up');
  t.equal(g.frames[0]?.t, 'error');
  t.equal(g.frames[0]?.code, ERROR_CODES.VERSION, `protocol-1 get first: SWARM_ERR_VERSION (got ${String(g.frames[0]?.code)}: ${String(g.frames[0]?.message)})`);
  const cid = 'ab'.repeat(32);
  const g2 = await answerTo(n.port, { t: 'get', id: 1, cid, from: 0, to: 1 });
  t.equal(g2.frames[0]?.code, ERROR_CODES.VERSION, 'a well-formed get before hello: SWARM_ERR_VERSION');

  // a current client against a protocol-1 server
  const v1 = await startVersion1Server(t);
  const c = new PeerClient('127.0.0.1', v1);
  await c.connect();
  const err = await c.list().then(() => null, (e: Error & { code?: string }) => e);
  c.destroy();
  t.equal(err?.code, ERROR_CODES.VERSION, 'PeerClient: SWARM_ERR_VERSION');
  t.match(err?.message ?? '', /older swarm/, `says it is an older swarm: ${err?.message}`);
  const ls = await listPeer(`127.0.0.1:${v1}`).then(() => null, (e: Error & { code?: string }) => e);
  t.equal(ls?.code, ERROR_CODES.VERSION, 'swarm ls --peer (listPeer): SWARM_ERR_VERSION');
  const out = tempDir(t);
  const ge = await get('f.bin', { peers: [`127.0.0.1:${v1}`], outDir: out, threads: 0, peerThreads: 0 }).then(() => null, (e: Error & { code?: string }) => e);
  t.match(ge?.message ?? '', /older swarm/, `get from it alone fails saying so: ${ge?.message}`);
  t.equal(ge?.code, ERROR_CODES.VERSION, `get from it alone: SWARM_ERR_VERSION (exit 7), got ${ge?.code}`);
});

t.test('a liar registered as a partial holder (full bitfield, wrong bytes, valid checksums) is dropped; the downloaders finish', async (t) => {
  const name = 'liar.bin';
  const src = tempDir(t);
  const data = randomBytes(prng(4004), 12 * MiB + 99);
  writeFileSync(path.join(src, name), data);
  const tr = await startTracker(t);
  const tracker = `127.0.0.1:${tr.port}`;
  // the honest seeder is slow, so the liar (fast, claims everything) surely gets requests
  const seed = await serve(src, { port: 0, host: '127.0.0.1', tracker, threads: 0, watch: false, maxUploadBytesPerSec: 8 * MiB });
  t.teardown(() => seed.close({ graceful: false }));
  const m = seed.library.manifest(name)!;
  const mtime = seed.library.stat(name)!.mtime;
  const liar = await startFakePeer(path.join(src, name), m, 'wrong-bytes', { name, mtime, complete: false });
  t.teardown(() => liar.close());
  const reg = await registerFake(tr.port, liar.port, [{ name, mtime, size: m.size, cid: m.cid, partial: true }]);
  t.teardown(() => reg.close());
  t.ok(await until(() => (tr.registry.whoHas(name)?.partial.length ?? 0) > 0), 'the tracker lists the liar as a partial holder');
  const liarAt = `127.0.0.1:${liar.port}`;

  const nodes = [await startNode(t, { tracker }), await startNode(t, { tracker })];
  const outs = nodes.map(() => tempDir(t));
  const dropped = nodes.map(() => [] as { peer: string; code: string }[]);
  const runs = nodes.map((n, i) => {
    const p = n.get(name, { tracker, outDir: outs[i]!, peerThreads: 0 });
    p.download.on('peer-dropped', (e) => dropped[i]!.push({ peer: e.peer, code: e.code }));
    return p;
  });
  const results = await within(Promise.all(runs), 30_000, 'both downloads');
  t.ok(liar.requests > 0, `the liar was asked for chunks (${liar.requests} requests)`);
  results.forEach((_r, i) => {
    t.ok(readFileSync(path.join(outs[i]!, name)).equals(data), `downloader ${i}: byte-identical`);
    const liarDrops = dropped[i]!.filter((d) => d.peer === liarAt);
    t.ok(liarDrops.length <= 1, `downloader ${i}: the liar dropped at most once (never dialled again)`);
    t.same(dropped[i]!.filter((d) => d.peer !== liarAt), [], `downloader ${i}: no honest peer dropped`);
    if (liarDrops.length) t.equal(liarDrops[0]!.code, ERROR_CODES.HASH_MISMATCH, `downloader ${i}: dropped for bad data`);
  });
  const total = results.reduce((a, r) => a + r.badChunks, 0);
  t.ok(total >= 3, `${total} bad chunks caught by their hashes`);
  t.ok(dropped.some((d) => d.some((x) => x.peer === liarAt)), 'the liar was dropped');
  results.forEach((r, i) => r.badChunks > 0 && t.ok(dropped[i]!.some((x) => x.peer === liarAt), `downloader ${i} got ${r.badChunks} bad chunks and dropped the liar`));
});

t.test('a share that downloads into its own folder adopts the file without hashing it again', async (t) => {
  const name = 'adopted.bin';
  const src = tempDir(t);
  const data = randomBytes(prng(6006), 5 * MiB + 17);
  writeFileSync(path.join(src, name), data);
  const seed = await serve(src, { port: 0, host: '127.0.0.1', noTracker: true, threads: 0, watch: false });
  t.teardown(() => seed.close({ graceful: false }));
  const m = seed.library.manifest(name)!;
  const share = tempDir(t);
  const n = await startNode(t, { share, noTracker: true });
  const lib = n.library!;
  const hashedBefore = lib.counters.filesHashed;
  const r = await n.get(name, { peers: [`127.0.0.1:${seed.port}`], outDir: share, peerThreads: 0 });
  t.ok(readFileSync(path.join(share, name)).equals(data), 'downloaded into the share');
  t.equal(r.cid, m.cid);
  t.ok(await until(() => lib.stat(name) !== undefined, 5_000), 'the library serves it');
  await lib.refresh(); // a rescan after the fact finds nothing to hash either
  t.equal(lib.counters.filesAdopted, 1, 'adopted once');
  t.equal(lib.counters.filesHashed, hashedBefore, 'not hashed');
  t.equal(lib.stat(name)?.cid, m.cid, 'under the content id of the download');
  t.same(n.sources.heldContents(), [], 'no longer held as a download: the library has it');
  const listed = await listPeer(`127.0.0.1:${n.port}`);
  t.same(listed.files.map((f) => [f.name, f.cid]), [[name, m.cid]], 'listed by the node once, with its content id');
  const whole = await fetchRange(n.port, m.cid, 0, chunkCount(m.size, m.chunkBytes));
  t.ok(whole.error === null && whole.bytes.equals(data), 'served whole from the library');
});

t.test('a partial holder that completes goes on serving: no moment when its content cannot be opened', async (t) => {
  const name = 'handover.bin';
  const src = tempDir(t);
  const data = randomBytes(prng(7007), 3 * MiB + 5);
  writeFileSync(path.join(src, name), data);
  const seed = await serve(src, { port: 0, host: '127.0.0.1', noTracker: true, threads: 0, watch: false });
  t.teardown(() => seed.close({ graceful: false }));
  // a host that opens the download's source over and over from its last verified chunk until
  // it is told the file is finished: what a new peer connection does at that moment
  let source: ChunkSource | null = null;
  let polling: Promise<void> | null = null;
  let finished = false;
  const opens = { ok: 0, failed: [] as string[] };
  const host: DownloadHost = {
    hello: { peer: newPeerId(), agent: 'test', listen: null, caps: [] },
    share: (_n, _m, s) => void (source = s),
    unshare: () => {},
    verified: () => {
      if (!source?.complete || polling) return;
      polling = (async () => {
        while (!finished) {
          await source!.open().then(
            (r) => {
              opens.ok++;
              return r.close();
            },
            (e: Error & { code?: string }) => void opens.failed.push(`${e.code}: ${e.message}`),
          );
        }
      })();
    },
    finished: () => void (finished = true),
    discover: () => ({ now: () => false, stop: () => {} }),
  };
  const out = tempDir(t);
  await get(name, { peers: [`127.0.0.1:${seed.port}`], outDir: out, threads: 0, peerThreads: 0, host });
  finished = true;
  await polling;
  t.ok(readFileSync(path.join(out, name)).equals(data), 'byte-identical');
  t.ok(opens.ok > 0, `${opens.ok} opens succeeded between the last chunk and the handover`);
  t.same(opens.failed.slice(0, 1), [], `no open failed (${opens.failed.length} did)`);
});
