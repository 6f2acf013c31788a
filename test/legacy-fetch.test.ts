/**
 * Stock seed-002 peers in a swarm (issue 12, item 7). A stock synchronizer is written here from
 * the seed's tables only: Table 1 to the tracker (Initial Message {port, files: [{name, mtime}]},
 * Keep-alive {port}, Directory Response {name: {ip, port, mtime}}), Table 2 between peers (the
 * plain file name in, the raw content out until the server closes). Then:
 * - `swarm get NAME` fetches a file only stock peers hold, byte-identical with the directory's
 *   mtime, and says what was checked (`verified`);
 * - lying stock holders (stall, reset mid-file, short and long files when a size is known) are
 *   dropped and the next holder is used, or the download fails with a clear error, and nothing
 *   ever appears under the final name (nor a part file after it);
 * - the stock peer fetches from swarm by plain name (answered at once), `--max-upload` paces a
 *   plain-name request, a file changed since it was hashed is not sent;
 * - the tracker keeps a stock peer through a long silence (its first sync), and not forever.
 */
import t from 'tap';
import type tap from 'tap';
import net from 'node:net';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TrackerServer } from '../lib/tracker/server.js';
import { trackerVersions } from '../lib/tracker/client.js';
import { FramedClient } from '../lib/net/framed-client.js';
import { serve } from '../lib/serve.js';
import { get } from '../lib/download/get.js';
import { InlineChunkPool } from '../lib/pool.js';
import { serveLegacyRequest } from '../lib/peer/legacy.js';
import { freeReserve, stockLimit } from '../lib/download/legacy-fetch.js';
import { ERROR_CODES } from '../lib/errors.js';
import { TokenBucket } from '../lib/scheduling/token-bucket.js';
import { noLog } from '../lib/log.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { swarm } from './helpers/procs.js';
import { syncPeer } from './helpers/sync-peers.js';
import { folderKey, newFolderKeySecret } from '../lib/sync/folder-key.js';

type T = { teardown(fn: () => unknown): void };
const MTIME = 1_600_000_123;

async function startTracker(t: T, opts = {}): Promise<TrackerServer> {
  const tr = new TrackerServer({ port: 0, ...opts });
  await tr.listen();
  t.teardown(() => tr.close());
  return tr;
}

type Behaviour = 'honest' | 'stall' | 'reset' | 'short' | 'extra';

/**
 * A stock seed-002 synchronizer: a file server (Table 2) on `ip`, and one TCP connection to the
 * tracker from the same address (Table 1). `behaviour` makes it lie when it serves.
 */
async function stockPeer(t: T, trackerPort: number, files: Record<string, Buffer>, opts: { ip?: string; behaviour?: Behaviour; mtime?: number } = {}) {
  const ip = opts.ip ?? '127.0.0.1';
  const behaviour = opts.behaviour ?? 'honest';
  const sockets = new Set<net.Socket>();
  let requests = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    // the skeleton's conn.recv(): what the first read brings is the name
    s.once('data', (d) => {
      requests++;
      const body = files[d.toString('utf8')];
      if (!body) return s.end();
      const half = body.subarray(0, Math.floor(body.length / 2));
      if (behaviour === 'honest') s.end(body);
      else if (behaviour === 'short') s.end(half);
      else if (behaviour === 'extra') s.end(Buffer.concat([body, Buffer.from('and some more bytes')]));
      else if (behaviour === 'stall') s.write(half);
      else s.write(half, () => setTimeout(() => s.resetAndDestroy(), 50));
    });
  });
  await new Promise<void>((r) => server.listen(0, ip, r));
  const port = (server.address() as net.AddressInfo).port;
  const tracker = net.connect({ port: trackerPort, host: '127.0.0.1', localAddress: ip });
  tracker.on('error', () => {});
  let buf = '';
  const directories: Record<string, { ip: string; port: number; mtime: number }>[] = [];
  const waiters: (() => void)[] = [];
  tracker.on('data', (d: Buffer) => {
    buf += d.toString();
    try {
      directories.push(JSON.parse(buf));
      buf = '';
      for (const w of waiters.splice(0)) w();
    } catch {
      // not complete yet
    }
  });
  await new Promise((r) => tracker.once('connect', r));
  const nextDirectory = async () => {
    const n = directories.length;
    while (directories.length === n) await new Promise<void>((r) => waiters.push(r));
    return directories.at(-1)!;
  };
  const first = nextDirectory();
  tracker.write(JSON.stringify({ port, files: Object.keys(files).map((name) => ({ name, mtime: opts.mtime ?? MTIME })) }));
  await first;
  t.teardown(() => {
    tracker.destroy();
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return {
    port,
    ip,
    requests: () => requests,
    keepalive: () => {
      const d = nextDirectory();
      tracker.write(JSON.stringify({ port }));
      return d;
    },
    leave: () => tracker.destroy(),
  };
}

/** Table 2 from the client's side: the plain name, then everything until the server closes. */
function fileRequest(ip: string, port: number, name: string): Promise<{ bytes: Buffer; firstByteMs: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let firstByteMs = -1;
    const s = net.connect(port, ip);
    const got: Buffer[] = [];
    const timer = setTimeout(() => (s.destroy(), reject(new Error('file request timed out'))), 10_000);
    s.on('connect', () => s.write(name));
    s.on('data', (d: Buffer) => {
      if (firstByteMs < 0) firstByteMs = Date.now() - t0;
      got.push(d);
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ bytes: Buffer.concat(got), firstByteMs, ms: Date.now() - t0 });
    });
  });
}

/** Nothing of a download is left beside the final name, and nothing is under it. */
function nothingLanded(t: Pick<typeof tap, 'notOk' | 'same'>, out: string, name: string): void {
  t.notOk(existsSync(path.join(out, name)), 'nothing under the final name');
  t.same(readdirSync(out).filter((f) => f.startsWith(name)), [], 'no part file, ticket or lock left');
}

const body = randomBytes(prng(3), 300_000);

t.test('one swarm: swarm get fetches from a stock peer, and the stock peer fetches from swarm by plain name', async (t) => {
  const tr = await startTracker(t);
  const shareDir = tempDir(t);
  const fromSwarm = randomBytes(prng(4), 200_000);
  writeFileSync(path.join(shareDir, 'swarm-file.bin'), fromSwarm);
  utimesSync(path.join(shareDir, 'swarm-file.bin'), MTIME + 7, MTIME + 7);
  const node = await serve(shareDir, { port: 0, tracker: `127.0.0.1:${tr.port}`, pool: new InlineChunkPool(), watch: false });
  t.teardown(() => node.close({ graceful: false }));

  const stock = await stockPeer(t, tr.port, { 'stock file.bin': body });
  const v = (await trackerVersions(`127.0.0.1:${tr.port}`, 'stock file.bin')).versions;
  t.equal(v[0]?.cid, `legacy:${MTIME}`, 'the directory marks it as a stock peer\'s');

  // swarm get, the CLI, from the stock peer
  const out = tempDir(t);
  const p = swarm(t, ['get', 'stock file.bin', '--tracker', `127.0.0.1:${tr.port}`, '-o', out, '--json', '--no-share']);
  const done = await p.waitFor((o) => o.event === 'done' || o.event === 'error', 15_000);
  t.equal(done.event, 'done', `done (stderr: ${p.stderr()})`);
  t.equal(done.verified, 'none', 'says the bytes could not be checked (no hash, no size in a seed-002 directory)');
  t.equal(done.cid, `legacy:${MTIME}`);
  t.equal(done.size, body.length);
  t.equal((await p.exit).code, 0);
  const landed = path.join(out, 'stock file.bin');
  t.ok(readFileSync(landed).equals(body), 'byte-identical');
  t.equal(Math.floor(statSync(landed).mtimeMs / 1000), MTIME, 'mtime from the directory');
  t.same(readdirSync(out), ['stock file.bin'], 'no temp files left');
  t.match(p.lines.join('\n'), /"event":"warning".*no hash and no size/, 'a warning says what is not checked');
  t.equal(stock.requests(), 1, 'one plain-name request');

  // again: up to date, nothing fetched
  const again = await get('stock file.bin', { tracker: `127.0.0.1:${tr.port}`, outDir: out, pool: new InlineChunkPool() });
  t.equal(again.upToDate, true, 'the same size and mtime: already up to date');
  t.equal(stock.requests(), 1, 'nothing asked of the stock peer');

  // the stock peer's side: the directory it gets names swarm's file; it fetches it by plain name
  const dir = await stock.keepalive();
  const entry = dir['swarm-file.bin'];
  t.same(entry, { ip: '127.0.0.1', port: node.port, mtime: MTIME + 7 }, 'the stock peer sees swarm\'s file');
  const latencies: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await fileRequest(entry!.ip, entry!.port, 'swarm-file.bin');
    t.ok(r.bytes.equals(fromSwarm), `plain-name request ${i}: the whole file`);
    latencies.push(r.firstByteMs);
  }
  // the bare name (no newline) of a shared file is answered at once, not after the 150 ms pause
  t.ok(Math.min(...latencies) < 140, `answered at once (first byte after ${latencies.join(', ')} ms)`);
  const unknown = await fileRequest(entry!.ip, entry!.port, 'no-such-file');
  t.equal(unknown.bytes.length, 0, 'an unknown name: nothing');
});

t.test('a newer version that only stock peers hold does not displace a verified one unless asked for', async (t) => {
  // anyone can register a name over seed 002 with any mtime: an unverifiable version must not win
  const tr = await startTracker(t);
  const tracker = `127.0.0.1:${tr.port}`;
  const shareDir = tempDir(t);
  const honest = randomBytes(prng(21), 150_000);
  writeFileSync(path.join(shareDir, 'tool.bin'), honest);
  utimesSync(path.join(shareDir, 'tool.bin'), MTIME, MTIME);
  const node = await serve(shareDir, { port: 0, tracker, pool: new InlineChunkPool(), watch: false });
  t.teardown(() => node.close({ graceful: false }));
  const forged = randomBytes(prng(22), 150_000);
  const stock = await stockPeer(t, tr.port, { 'tool.bin': forged }, { mtime: MTIME + 1 });
  const out = tempDir(t);
  const p = get('tool.bin', { tracker, outDir: out, pool: new InlineChunkPool() });
  const warnings: string[] = [];
  p.download.on('warning', (w: { message: string }) => warnings.push(w.message));
  await p;
  t.ok(readFileSync(path.join(out, 'tool.bin')).equals(honest), 'the verified version is fetched');
  t.equal(stock.requests(), 0, 'nothing asked of the stock peer');
  t.match(warnings.join('\n'), /held only by stock seed-002 peers.*--version legacy:/, 'and the user is told, with the way to fetch the other');
  // asked for by name, the stock version is fetched (and says what was checked)
  const out2 = tempDir(t);
  const r2 = await get('tool.bin', { tracker, outDir: out2, pool: new InlineChunkPool(), version: `legacy:${MTIME + 1}` });
  t.ok(readFileSync(path.join(out2, 'tool.bin')).equals(forged), '--version legacy:MTIME fetches the stock version');
  t.equal(r2.verified, 'none');
  // the CLI takes what the warning says to type
  const out3 = tempDir(t);
  const cli = swarm(t, ['get', 'tool.bin', '--version', `legacy:${MTIME + 1}`, '--tracker', tracker, '-o', out3, '--json', '--no-share']);
  t.equal((await cli.exit).code, 0, `swarm get --version legacy:MTIME exits 0 (${cli.stderr().slice(0, 300)})`);
  t.ok(readFileSync(path.join(out3, 'tool.bin')).equals(forged));
  // a stock version nobody holds is not found; never another version instead
  await t.rejects(get('tool.bin', { tracker, outDir: tempDir(t), pool: new InlineChunkPool(), version: 'legacy:999' }), { code: ERROR_CODES.NOT_FOUND });
});

t.test('lying stock holders are dropped and the next is used; when all lie, a clear error and nothing under the name', async (t) => {
  const tr = await startTracker(t);
  const tracker = `127.0.0.1:${tr.port}`;
  // holders are tried in address order: the liars on 127.0.0.1, the honest one on 127.0.0.2
  const stall = await stockPeer(t, tr.port, { 'a.bin': body }, { behaviour: 'stall' });
  const reset = await stockPeer(t, tr.port, { 'a.bin': body }, { behaviour: 'reset' });
  const honest = await stockPeer(t, tr.port, { 'a.bin': body }, { ip: '127.0.0.2' });
  const out = tempDir(t);
  const dropped: string[] = [];
  const p = get('a.bin', { tracker, outDir: out, pool: new InlineChunkPool(), stallMs: 400 });
  // when a liar is dropped (its bytes were in the part file), nothing is under the final name
  let sawEarly = false;
  p.download.on('peer-dropped', (e) => {
    dropped.push(`${e.peer} ${e.code} ${e.reason}`);
    sawEarly ||= existsSync(path.join(out, 'a.bin'));
  });
  const r = await p;
  t.notOk(sawEarly, 'nothing under the final name while liars were being tried');
  t.equal(dropped.length, 2, `both liars dropped: ${dropped.join('; ')}`);
  t.match(dropped.join('\n'), /SWARM_ERR_PEER_TIMEOUT stalled/, 'the stall');
  t.match(dropped.join('\n'), /SWARM_ERR_PEER_CLOSED/, 'the reset mid-file');
  t.equal(r.peersDropped, 2);
  t.ok(readFileSync(path.join(out, 'a.bin')).equals(body), 'the honest holder\'s bytes');
  t.equal(Math.floor(statSync(path.join(out, 'a.bin')).mtimeMs / 1000), MTIME);
  t.same(readdirSync(out), ['a.bin'], 'no temp files');
  t.equal(stall.requests() + reset.requests() + honest.requests(), 3, 'each holder asked once');

  // a size known (sync passes the version it knows): short and long files are refused
  const known = (holders: { ip: string; port: number }[]) => ({ cid: `legacy:${MTIME}`, size: body.length, mtime: MTIME, holders: holders.map(({ ip, port }) => ({ ip, port })), partial: [] });
  const tr2 = await startTracker(t);
  const short = await stockPeer(t, tr2.port, { 'b.bin': body }, { behaviour: 'short' });
  const extra = await stockPeer(t, tr2.port, { 'b.bin': body }, { behaviour: 'extra' });
  const honest2 = await stockPeer(t, tr2.port, { 'b.bin': body }, { ip: '127.0.0.2' });
  const out2 = tempDir(t);
  const dropped2: string[] = [];
  const p2 = get('b.bin', { known: known([short, extra, honest2]), outDir: out2, pool: new InlineChunkPool() });
  p2.download.on('peer-dropped', (e) => dropped2.push(`${e.code} ${e.reason}`));
  const r2 = await p2;
  t.equal(r2.verified, 'size', 'checked against the size');
  t.match(dropped2.join('\n'), /ended after 150000 of the 300000 bytes/, 'the short file');
  t.match(dropped2.join('\n'), /sent more than the 300000 bytes/, 'the long file');
  t.ok(readFileSync(path.join(out2, 'b.bin')).equals(body), 'the honest bytes');

  // every holder lies: a clear error, nothing under the name, no part file
  const out3 = tempDir(t);
  await t.rejects(get('b.bin', { known: known([short, extra]), outDir: out3, pool: new InlineChunkPool() }), { code: 'SWARM_ERR_TRUNCATED', message: /no stock seed-002 holder of b\.bin delivered it whole.*nothing was written/ });
  nothingLanded(t, out3, 'b.bin');
  // only a holder that resets mid-file, through the CLI: exit 4 with the reason, nothing left
  const out4 = tempDir(t);
  const tr3 = await startTracker(t);
  await stockPeer(t, tr3.port, { 'c.bin': body }, { behaviour: 'reset' });
  const cli = swarm(t, ['get', 'c.bin', '--tracker', `127.0.0.1:${tr3.port}`, '-o', out4, '--json', '--no-share']);
  const err = await cli.waitFor((o) => o.event === 'error' || o.event === 'done', 20_000);
  t.equal(err.event, 'error');
  t.equal(err.code, 'SWARM_ERR_NO_PEERS');
  t.match(err.message, /connection failed after \d+ bytes|closed without ending/);
  t.equal((await cli.exit).code, 4);
  nothingLanded(t, out4, 'c.bin');
});

t.test('plain-name requests to swarm: --max-upload paces them, a changed file is not sent', async (t) => {
  const dir = tempDir(t);
  const big = randomBytes(prng(5), 512 << 10);
  writeFileSync(path.join(dir, 'big.bin'), big);
  writeFileSync(path.join(dir, 'note.txt'), 'original text\n');
  const limit = 256 << 10;
  const node = await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false, maxUploadBytesPerSec: limit });
  t.teardown(() => node.close({ graceful: false }));

  // legacy.ts itself, with the server's bucket: 512 KiB at 256 KiB/s (one second's burst) ≥ ~1 s
  const bucket = new TokenBucket(limit, Date.now());
  const direct = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => void serveLegacyRequest(s, d, node.library, noLog, () => {}, bucket).finally(() => s.destroy()));
  });
  await new Promise<void>((r) => direct.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => direct.close(r)));
  const paced = await fileRequest('127.0.0.1', (direct.address() as net.AddressInfo).port, 'big.bin');
  t.ok(paced.bytes.equals(big), 'the whole file');
  t.ok(paced.ms >= 800, `paced by the upload limit (${paced.ms} ms for 512 KiB at 256 KiB/s)`);

  // through a real server: the session must hand its bucket to legacy.ts
  const viaServe = await fileRequest('127.0.0.1', node.port, 'big.bin');
  t.ok(viaServe.bytes.equals(big), 'the whole file from serve');
  t.ok(viaServe.ms >= 800, `serve --max-upload paces a plain-name request (${viaServe.ms} ms)`);

  // changed since it was hashed (no rescan): refused, not a byte of old or new content
  writeFileSync(path.join(dir, 'note.txt'), 'CHANGED text\n');
  utimesSync(path.join(dir, 'note.txt'), MTIME, MTIME);
  const changed = await fileRequest('127.0.0.1', node.port, 'note.txt');
  t.equal(changed.bytes.length, 0, 'a changed file is not sent by plain name');
});

t.test('the tracker keeps a silent stock peer through its first sync, then lets it go', async (t) => {
  const tr = await startTracker(t, { keepaliveMs: 100, legacySilenceMs: 1_500 });
  const framed = new FramedClient('127.0.0.1', tr.port, { side: 'trackerReply' });
  await framed.connect();
  t.teardown(() => framed.destroy());
  await framed.request({ t: 'register', port: 9, files: [{ name: 'ours.txt', mtime: 1, size: 1, cid: 'ab'.repeat(32) }] }, 'ok');
  await stockPeer(t, tr.port, { 'theirs.txt': Buffer.from('x') });
  const names = () => [...tr.registry.directory().keys()].sort();
  t.same(names(), ['ours.txt', 'theirs.txt']);
  // 6 of our keepalive periods of silence: ours expires, the stock peer (mid-sync) stays
  const deadline = Date.now() + 5_000;
  while (names().includes('ours.txt') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  t.same(names(), ['theirs.txt'], 'our silent peer expired after 3 periods; the stock peer is still listed');
  while (names().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.same(names(), [], 'the stock peer expires too, after its own longer silence');
});

t.test('a part file of another version is discarded when only stock peers hold the name now', async (t) => {
  const tr = await startTracker(t);
  await stockPeer(t, tr.port, { 'd.bin': body });
  const out = tempDir(t);
  mkdirSync(path.join(out, 'sub'));
  writeFileSync(path.join(out, 'd.bin.swarm-part'), 'old partial');
  writeFileSync(path.join(out, 'd.bin.swarm-ticket'), 'old ticket');
  const warnings: string[] = [];
  const p = get('d.bin', { tracker: `127.0.0.1:${tr.port}`, outDir: out, pool: new InlineChunkPool() });
  p.download.on('warning', (e) => warnings.push(e.message));
  await p;
  t.ok(readFileSync(path.join(out, 'd.bin')).equals(body));
  t.match(warnings.join('\n'), /discarding the partial download of another version/);
  t.same(readdirSync(out).sort(), ['d.bin', 'sub']);
  // a different file at NAME is left alone
  writeFileSync(path.join(out, 'd.bin'), 'mine');
  await t.rejects(get('d.bin', { tracker: `127.0.0.1:${tr.port}`, outDir: out, pool: new InlineChunkPool() }), { code: 'SWARM_ERR_EXISTS' });
  t.equal(readFileSync(path.join(out, 'd.bin'), 'utf8'), 'mine');
});

t.test('a fetch of unknown size never takes the last of the disk', async (t) => {
  const GiB = 2 ** 30;
  t.equal(freeReserve(GiB), 64 << 20, 'at least 64 MiB stays free');
  t.equal(freeReserve(1000 * GiB), 10 * GiB, '1% of a big disk');
  const roomy = stockLimit(4 * GiB, { avail: 500 * GiB, total: 1000 * GiB });
  t.same([roomy.bytes, roomy.code], [4 * GiB, ERROR_CODES.TRUNCATED], 'the cap when the disk has room');
  const tight = stockLimit(4 * GiB, { avail: 3 * GiB, total: 100 * GiB });
  t.equal(tight.bytes, 3 * GiB - GiB, 'the free space less the reserve');
  t.equal(tight.code, ERROR_CODES.DISK_FULL, 'past it: the disk is full, as an I/O error (exit 6)');
  t.match(tight.why, /room on the disk/);
  t.equal(stockLimit(4 * GiB, { avail: 10 << 20, total: 100 * GiB }).bytes, 0, 'less free than the reserve: nothing');
});

t.test('sync: an open folder takes a stock peer\'s new and newer files by plain name; a keyed folder never; the stock peer reads sync\'s', async (t) => {
  const tr = await startTracker(t);
  const tracker = `127.0.0.1:${tr.port}`;
  const newer = randomBytes(prng(31), 90_000);
  const fresh = randomBytes(prng(32), 2_000_000); // more than one chunk: the same path as any size
  const stock = await stockPeer(t, tr.port, { 'notes.txt': newer, 'sub/new.bin': fresh }, { mtime: MTIME + 50 });
  const openDir = tempDir(t);
  writeFileSync(path.join(openDir, 'notes.txt'), 'an older version here');
  utimesSync(path.join(openDir, 'notes.txt'), MTIME, MTIME);
  writeFileSync(path.join(openDir, 'mine.txt'), 'only here');
  utimesSync(path.join(openDir, 'mine.txt'), MTIME, MTIME);
  const open = await syncPeer(t, openDir, { tracker });
  await open.sync.syncOnce();
  t.ok(readFileSync(path.join(openDir, 'notes.txt')).equals(newer), 'the newer version from the stock peer replaced ours');
  t.ok(readFileSync(path.join(openDir, 'sub/new.bin')).equals(fresh), 'a file new here, in a subfolder');
  t.equal(Math.floor(statSync(path.join(openDir, 'sub/new.bin')).mtimeMs / 1000), MTIME + 50, 'mtime from the directory');
  t.ok(existsSync(path.join(openDir, '.swarm', 'trash')), 'the version replaced is in the trash');
  const asked = stock.requests();
  t.equal(asked, 2, 'one plain-name request per file');
  // in step: the next round fetches nothing again (same mtime: ours, verified, is kept)
  await open.node.library.refresh();
  await open.sync.syncOnce();
  t.equal(stock.requests(), asked, 'nothing fetched twice');
  t.equal(open.sync.members().read, 0, 'a stock peer is not counted as a member read');
  t.ok(open.sync.reachedAnyone(), 'files fetched from a stock peer: someone was reached (sync --once exits 0)');
  // a stock entry older than our copy fetches nothing: a directory entry alone (stale, or planted
  // by anyone who can write to the tracker) is not a peer reached
  // (another tracker: the open folder above is a member, and would be read)
  const tr2 = await startTracker(t);
  const stock2 = await stockPeer(t, tr2.port, { 'notes.txt': newer }, { mtime: MTIME + 50 });
  const oldDir = tempDir(t);
  writeFileSync(path.join(oldDir, 'notes.txt'), 'newer here than the stock entry');
  utimesSync(path.join(oldDir, 'notes.txt'), MTIME + 100, MTIME + 100);
  const olderStock = await syncPeer(t, oldDir, { tracker: `127.0.0.1:${tr2.port}` });
  await olderStock.sync.syncOnce();
  t.equal(stock2.requests(), 0, 'nothing fetched from the stock peer');
  t.notOk(olderStock.sync.reachedAnyone(), 'so nobody was reached (sync --once: exit 4, not "in step")');
  // the stock peer sees the open folder's own file in its directory and fetches it by name
  const dir = await stock.keepalive();
  t.equal(dir['mine.txt']?.port, open.node.port, 'the stock peer sees sync\'s file');
  const r = await fileRequest('127.0.0.1', open.node.port, 'mine.txt');
  t.equal(r.bytes.toString(), 'only here');
  // a keyed folder takes nothing from a peer that proves no key
  const keyedDir = tempDir(t);
  const keyed = await syncPeer(t, keyedDir, { tracker, key: folderKey(newFolderKeySecret()) });
  await keyed.sync.syncOnce();
  t.notOk(existsSync(path.join(keyedDir, 'notes.txt')), 'keyed: nothing from the stock peer');
  t.equal(stock.requests(), asked, 'and nothing asked of it');
});

t.test('sync --open takes nothing a stock peer lists in the state folder, under swarm\'s own file names, or dated in the future', async (t) => {
  const tr = await startTracker(t);
  const tracker = `127.0.0.1:${tr.port}`;
  const poison = Buffer.from(JSON.stringify({ pid: 1, host: 'victim' }));
  const stock = await stockPeer(t, tr.port, { '.swarm/sync.swarm-lock': poison, '.swarm/sync-index.json': Buffer.from('junk'), 'a.swarm-part': poison, 'x/.swarm-tmp-sync-1-1': poison, 'fine.txt': Buffer.from('fine') }, { mtime: MTIME });
  const future = await stockPeer(t, tr.port, { 'later.txt': Buffer.from('from 2106') }, { ip: '127.0.0.2', mtime: 0xfffffff0 });
  const dir = tempDir(t);
  const p = await syncPeer(t, dir, { tracker });
  await p.sync.syncOnce();
  t.equal(readFileSync(path.join(dir, 'fine.txt'), 'utf8'), 'fine', 'an ordinary name is fetched');
  t.notOk(existsSync(path.join(dir, 'a.swarm-part')), 'not a part file name');
  t.notOk(existsSync(path.join(dir, 'x')), 'not a temp file name');
  t.notOk(existsSync(path.join(dir, 'later.txt')), 'not a file dated 2106');
  const index = path.join(dir, '.swarm', 'sync-index.json');
  t.notMatch(existsSync(index) ? readFileSync(index, 'utf8') : '', /^junk/, 'the index is ours (or not written yet)');
  t.equal(stock.requests() + future.requests(), 1, 'only the ordinary name was asked for');
  // the lock is still ours: a second sync of the folder is refused as running, not as pid 1
  const lock = readFileSync(path.join(dir, '.swarm', 'sync.swarm-lock'), 'utf8');
  t.match(lock, new RegExp(`"pid":${process.pid}`), 'the sync lock was not replaced');
});
