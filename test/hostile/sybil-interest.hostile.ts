/**
 * Hostile review of the upload policy (requester-chunks.ts, upload-slots.ts better()): what a
 * requester that lies in `interest` costs the server and the other requesters. All on 127.0.0.x;
 * servers and raw clients close at teardown.
 */
import t, { type Test } from 'tap';
import { get } from '../../lib/download/get.js';
import v8 from 'node:v8';
import vm from 'node:vm';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { serve, type ServeHandle } from '../../lib/index.js';
import { InlineChunkPool } from '../../lib/pool.js';
import { MAX_INTERESTS } from '../../lib/peer/interests.js';
import type { PeerServer } from '../../lib/peer/server.js';
import { tempDir } from '../helpers/tmp.js';
import { rawClient } from '../helpers/raw-client.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

type Served = ServeHandle & { server: PeerServer };

t.test('one connection\'s `interest` in every content: at most MAX_INTERESTS are kept (requester counts and spreads)', async (t) => {
  const FILES = 600;
  const dir = tempDir(t);
  for (let i = 0; i < FILES; i++) writeFileSync(path.join(dir, `f${String(i).padStart(4, '0')}.bin`), `file ${i} `.repeat(10));
  const h = (await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false })) as Served;
  t.teardown(() => h.close({ graceful: false }));
  const lister = await rawClient(t, h.port);
  const cids: string[] = [];
  let after: string | undefined;
  for (let id = 1; id < 100; id++) {
    lister.send({ t: 'list', id, ...(after ? { after } : {}) });
    const page = (await lister.waitFor((m) => m.t === 'files' && m.id === id, 5_000))!;
    for (const f of page.files as { cid: string }[]) cids.push(f.cid);
    if (typeof page.next !== 'string') break;
    after = page.next;
  }
  t.equal(cids.length, FILES, 'every content listed');
  lister.close();

  gc();
  const mem = () => process.memoryUsage().heapUsed + process.memoryUsage().external;
  const before = mem();
  const CONNS = 24;
  const clients = [];
  for (let k = 0; k < CONNS; k++) {
    const c = await rawClient(t, h.port, `127.0.0.${2 + (k % 8)}`);
    for (const cid of cids) c.send({ t: 'interest', cid });
    clients.push(c);
  }
  // the first MAX_INTERESTS are answered with their bitfield, the rest ignored: wait for the last
  // answered of each connection, then for one more request to be sure the rest were read
  for (const c of clients) await c.waitFor((m) => m.t === 'bitfield' && m.cid === cids[MAX_INTERESTS - 1], 10_000);
  for (const c of clients) {
    c.send({ t: 'manifest', id: 99, cid: 'f'.repeat(64) });
    await c.waitFor((m) => m.t === 'error' && m.id === 99, 10_000);
    t.equal(c.messages.filter((m) => m.t === 'bitfield').length, MAX_INTERESTS, 'only MAX_INTERESTS interests answered on one connection');
  }
  gc();
  const grown = mem() - before;
  const perSession = h.server.requesters.maxContentsPerSession();
  const spreads = (h.server.spreads as unknown as { joined: Map<number, Set<string>> }).joined;
  const perSpread = Math.max(...[...spreads.values()].map((s) => s.size));
  const perPair = grown / (CONNS * FILES);
  t.comment(`heap+external grew ${(grown / 2 ** 20).toFixed(1)} MiB for ${CONNS} connections x ${FILES} contents: ~${perPair.toFixed(0)} B per (connection, content); ` +
    `at 256 connections x 100,000 files (the README's share size) that is ~${((perPair * 256 * 100_000) / 2 ** 30).toFixed(1)} GiB`);
  t.ok(perSession <= MAX_INTERESTS, `requester counts keep at most MAX_INTERESTS (${MAX_INTERESTS}) contents per connection (kept ${perSession})`);
  t.ok(perSpread <= MAX_INTERESTS, `spreads keep at most MAX_INTERESTS contents per connection (kept ${perSpread})`);
  for (const c of clients) c.close();
});

/**
 * Four attacker connections download a few chunks over and over (acknowledging each at once, so
 * they are never laggards) while idle sybil connections claim, in their `interest` bitfields,
 * every other chunk. The honest downloader's chunks then look common, the attacker's rare: each
 * honest chunk waits out STARVE_MS (3 s) before it may go. Baseline: the same attackers, sybils
 * that claim nothing.
 */
async function honestUnderAttack(t: Test, lie: boolean): Promise<{ ms: number; chunks: number; attackerChunks: number; done: boolean }> {
  const CHUNKS = 12;
  const ATTACK = [8, 9, 10, 11]; // the chunks the attackers fetch over and over
  const dir = tempDir(t);
  const data = Buffer.alloc(CHUNKS << 20);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(path.join(dir, 'f.bin'), data);
  const h = (await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false, maxUploadBytesPerSec: 24 << 20 })) as Served;
  t.teardown(() => h.close({ graceful: false }));
  const cid = h.server ? (h as unknown as { library: { stat(n: string): { cid: string } } }).library.stat('f.bin').cid : '';
  const bits = new Uint8Array(Math.ceil(CHUNKS / 8));
  for (let c = 0; c < CHUNKS; c++) if (!ATTACK.includes(c)) bits[c >> 3]! |= 1 << (c & 7);
  const SYBILS = 40;
  for (let k = 0; k < SYBILS; k++) {
    const s = await rawClient(t, h.port, `127.0.0.${10 + (k % 20)}`);
    s.send({ t: 'interest', cid, ...(lie ? { have: Buffer.from(bits).toString('base64') } : {}) });
    // keep it from looking idle
    const keep = setInterval(() => s.send({ t: 'have', cid, chunks: [] }), 1_000);
    t.teardown(() => clearInterval(keep));
  }
  let attackerChunks = 0;
  let stop = false;
  for (let k = 0; k < 4; k++) {
    const a = await rawClient(t, h.port, `127.0.0.${2 + k}`);
    a.send({ t: 'interest', cid });
    let id = 1;
    const ask = () => !stop && a.send({ t: 'get', id: ++id, cid, from: ATTACK[0], to: ATTACK.at(-1)! + 1 });
    a.onChunk = (_r, c) => {
      attackerChunks++;
      a.send({ t: 'have', cid, chunks: [c] });
    };
    a.socket.on('data', () => {
      while (a.messages.length) {
        const m = a.messages.shift()!;
        if (m.t === 'done' && m.id === id) ask();
      }
    });
    ask();
    ask(); // two requests queued: the session always has a chunk waiting
  }
  // let the attack settle into the slots
  await new Promise((r) => setTimeout(r, 500));
  const out = tempDir(t);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error('bound')), 15_000);
  const started = Date.now();
  const p = get('f.bin', { peers: [`127.0.0.1:${h.port}`], outDir: out, threads: 0, peerThreads: 0, signal: ac.signal, giveUpMs: 0 });
  let chunks = 0;
  p.download.on('progress', (e) => (chunks = Math.floor(e.bytes / (1 << 20))));
  const done = await p.then(() => true, () => false);
  clearTimeout(timer);
  stop = true;
  return { ms: Date.now() - started, chunks: done ? CHUNKS : chunks, attackerChunks, done };
}

t.test('sybils claiming chunks in `interest` and never asking do not slow an honest downloader', async (t) => {
  const base = await t.test('baseline: same attackers, sybils claim nothing', async (t) => {
    const r = await honestUnderAttack(t, false);
    t.comment(`baseline: honest done=${r.done} in ${r.ms} ms (${r.chunks} chunks), attackers got ${r.attackerChunks} chunks meanwhile`);
    t.ok(r.done, 'the honest download finished');
    (globalThis as { baseMs?: number }).baseMs = r.ms;
  });
  void base;
  await t.test('sybils lie', async (t) => {
    const r = await honestUnderAttack(t, true);
    const baseMs = (globalThis as { baseMs?: number }).baseMs ?? 0;
    t.comment(`with lies: honest done=${r.done} in ${r.ms} ms (${r.chunks} chunks), attackers got ${r.attackerChunks} chunks meanwhile (baseline ${baseMs} ms)`);
    t.ok(r.done && r.ms < 1.5 * baseMs + 1_000, 'lying bitfields do not slow the honest download by more than half');
  });
});

t.test('requester counts go with the session: closed by the guard (idle), by a protocol error, by the peer', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'f.bin'), Buffer.alloc(3 << 20, 7));
  const h = (await serve(dir, { port: 0, noTracker: true, pool: new InlineChunkPool(), watch: false, limits: { idleMs: 400 } })) as Served;
  t.teardown(() => h.close({ graceful: false }));
  const cid = (h as unknown as { library: { stat(n: string): { cid: string } } }).library.stat('f.bin').cid;
  const req = h.server.requesters;
  const idle = await rawClient(t, h.port, '127.0.0.2');
  const bad = await rawClient(t, h.port, '127.0.0.3');
  const bye = await rawClient(t, h.port, '127.0.0.4');
  for (const c of [idle, bad, bye]) {
    c.send({ t: 'interest', cid, have: Buffer.from([1]).toString('base64') });
    await c.waitFor((m) => m.t === 'bitfield', 3_000);
  }
  t.equal(req.sessions(), 3, 'three requesters joined');
  t.equal(req.holders(cid, 0), 0, 'none counted before it takes a chunk');
  for (const c of [idle, bad, bye]) c.send({ t: 'get', id: 1, cid, from: 1, to: 2 });
  // a requester counts once it acknowledges a chunk we sent it (a get alone is not enough: one
  // cancelled at once costs a sybil nothing)
  for (const c of [idle, bad, bye]) {
    await c.waitFor((m) => m.t === 'done' && m.id === 1, 3_000);
    c.send({ t: 'have', cid, chunks: [1] });
  }
  const deadline = Date.now() + 3_000;
  while (req.holders(cid, 0) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(req.holders(cid, 0), 3, 'each counted once it acknowledged a chunk');
  bad.socket.write(Buffer.from([0, 0, 0, 5, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b])); // a frame that is no JSON
  bye.close();
  const closed = (c: typeof idle) => new Promise((r) => (c.socket.destroyed ? r(null) : c.socket.once('close', r)));
  await Promise.race([Promise.all([closed(idle), closed(bad)]), new Promise((r) => setTimeout(r, 5_000))]);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(req.sessions(), 0, 'every session left');
  t.equal(req.contents(), 0, 'no content kept');
});
