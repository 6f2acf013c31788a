/**
 * The overlay (issue "Find peers without a tracker", seed 001): 20 peers on loopback in a random
 * 3-regular graph (a ring plus a random perfect matching, so it is connected), no tracker.
 * SEARCH within TTL 6 finds the one holder, every peer handles each message id at most once
 * (messages counted), TTL 1 reaches only the neighbours, DISCOVER fills a peer list, RESET
 * empties it, and `get` finds its holders through the overlay alone, byte for byte.
 * The bounds against hostile input (floods of fresh ids, TTLs above the maximum, loops, bad
 * answers, patterns built to backtrack) are checked at the end.
 */
import t from 'tap';
import { writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SwarmNode } from '../lib/node/node.js';
import { FramedClient } from '../lib/net/framed-client.js';
import { localHello } from '../lib/net/identity.js';
import { matcher, MAX_TTL, ExpiringMap, RateLimiter } from '../lib/discovery/flood.js';
import { PeerBook } from '../lib/discovery/peer-book.js';
import { overlaySearch, versionsOf } from '../lib/discovery/search.js';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';

const N = 20;
const FILE = 'holder-only/needle.bin';

type T = { teardown(fn: () => unknown): void };

async function startNodes(t: T, n: number, holderIndex: number, data: Buffer): Promise<SwarmNode[]> {
  const nodes: SwarmNode[] = [];
  for (let i = 0; i < n; i++) {
    let share: string | undefined;
    if (i === holderIndex) {
      share = tempDir(t);
      const p = path.join(share, ...FILE.split('/'));
      (await import('node:fs')).mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, data);
    }
    const node = await SwarmNode.start({ ...(share ? { share, watch: false } : {}), port: 0, host: '127.0.0.1', noTracker: true, threads: 0 });
    t.teardown(() => node.close({ graceful: false }));
    nodes.push(node);
  }
  return nodes;
}

/** Ring + random perfect matching: every node has degree 3 (a chord that repeats a ring edge is re-drawn). */
function graph(n: number, seed: number): number[][] {
  const rand = prng(seed);
  for (let attempt = 0; attempt < 1000; attempt++) {
    const adj = Array.from({ length: n }, (_, i) => new Set([(i + 1) % n, (i + n - 1) % n]));
    const order = [...Array(n).keys()].sort(() => rand() - 0.5);
    let ok = true;
    for (let k = 0; k < n; k += 2) {
      const a = order[k]!;
      const b = order[k + 1]!;
      if (adj[a]!.has(b)) {
        ok = false;
        break;
      }
      adj[a]!.add(b);
      adj[b]!.add(a);
    }
    if (ok) return adj.map((s) => [...s]);
  }
  throw new Error('no graph');
}

function distances(adj: number[][], from: number): number[] {
  const d = adj.map(() => Infinity);
  d[from] = 0;
  const q = [from];
  while (q.length) {
    const x = q.shift()!;
    for (const y of adj[x]!) if (d[y] === Infinity) (d[y] = d[x]! + 1), q.push(y);
  }
  return d;
}

function link(nodes: SwarmNode[], adj: number[][]): void {
  adj.forEach((ns, i) => ns.forEach((j) => nodes[i]!.book.add({ ip: '127.0.0.1', port: nodes[j]!.port }, 'neighbor')));
}

const sum = (nodes: SwarmNode[], k: 'received' | 'duplicates' | 'sent' | 'limited' | 'answered') => nodes.reduce((a, n) => a + n.overlay.counters[k], 0);
const snapshot = (nodes: SwarmNode[]) => nodes.map((n) => ({ ...n.overlay.counters }));

t.test('20 peers, random 3-regular graph: SEARCH, TTL, DISCOVER, RESET, get through the overlay', async (t) => {
  const data = randomBytes(prng(7), 3 * 1024 * 1024 + 123);
  const adj = graph(N, 42);
  const d = distances(adj, 0);
  // A flood handles each id once, so a copy that came the long way first is the one forwarded
  // (fewer hops left): the holder is put 3-4 hops away, with room for such detours within TTL 6.
  const HOLDER = d.findIndex((x) => x === 4) >= 0 ? d.findIndex((x) => x === 4) : d.findIndex((x) => x === 3);
  t.ok(HOLDER > 0, `the holder is peer ${HOLDER}, ${d[HOLDER]} hops from peer 0`);
  const nodes = await startNodes(t, N, HOLDER, data);
  link(nodes, adj);

  // SEARCH with TTL 6 finds the one holder
  const before = snapshot(nodes);
  const hits = await overlaySearch(nodes[0]!.overlay, 'NEEDLE', { ttl: 6, waitMs: 5_000 });
  t.equal(hits.length, 1, 'one hit');
  t.equal(hits[0]?.file.name, FILE, 'case-insensitive substring match');
  t.same(hits[0]?.holder, { ip: '127.0.0.1', port: nodes[HOLDER]!.port }, 'the holder is named with its serving address');
  // every peer handled the message at most once: as many forwards as the flood needs, no more
  nodes.forEach((n, i) => {
    const c = n.overlay.counters;
    const b = before[i]!;
    const handled = c.received - b.received - (c.duplicates - b.duplicates) - (c.limited - b.limited);
    if (i === 0) t.equal(handled, 0, 'the origin never handles its own search');
    else if (d[i]! <= 4) t.equal(handled, 1, `peer ${i} (distance ${d[i]}) handled the search once`);
    else t.ok(handled <= 1, `peer ${i} (distance ${d[i]}) handled the search at most once`);
    // a peer forwards to its neighbours except the sender, once, when TTL is left
    const sentNow = c.sent - b.sent;
    t.ok(sentNow <= (i === 0 ? 3 : 2), `peer ${i} sent it to at most ${i === 0 ? 3 : 2} neighbours (sent ${sentNow})`);
  });
  const received = sum(nodes, 'received') - before.reduce((a, c) => a + c.received, 0);
  const sent = sum(nodes, 'sent') - before.reduce((a, c) => a + c.sent, 0);
  t.equal(received, sent, 'every message sent was received once (nothing lost, nothing doubled)');
  // the origin sends to its 3 neighbours, every other peer at most once to its other 2: the flood's
  // count, below twice the edges (each edge crossed at most once each way)
  t.ok(sent <= 3 + 2 * (N - 1) && sent <= 3 * N, `messages for one search: ${sent}, at most ${3 + 2 * (N - 1)} (edges: ${(3 * N) / 2})`);
  t.ok(sum(nodes, 'duplicates') > 0, 'loops in the graph brought copies, and they were dropped');

  // TTL 1 reaches only the neighbours
  const pongs1 = await nodes[0]!.discovery.discoverPeers(1, 1_500);
  t.same(pongs1.map((p) => p.addr.port).sort(), adj[0]!.map((j) => nodes[j]!.port).sort(), 'DISCOVER with TTL 1: exactly the three neighbours answer');
  const far = adj.findIndex((_, i) => d[i]! >= 2);
  const farSearch = await overlaySearch(nodes[far === -1 ? 1 : far]!.overlay, 'needle', { ttl: 1, waitMs: 1_000 });
  const holderIsNeighbour = adj[far]!.includes(HOLDER);
  t.equal(farSearch.length, holderIsNeighbour ? 1 : 0, `SEARCH with TTL 1 from peer ${far} finds the holder only if it is a neighbour (${holderIsNeighbour})`);

  // DISCOVER fills the peer list; RESET empties it
  const book = nodes[5]!.book;
  const sizeBefore = book.size;
  const pongs = await nodes[5]!.discovery.discoverPeers(6, 3_000);
  const d5 = distances(adj, 5);
  const near = d5.filter((x) => x >= 1 && x <= 4).length;
  const ports = new Set(pongs.map((p) => p.addr.port));
  t.equal(ports.size, pongs.length, 'each peer answered once');
  t.ok(pongs.length >= near, `DISCOVER with TTL 6 from peer 5 heard from ${pongs.length} peers (all ${near} within 4 hops at least)`);
  t.ok(pongs.every((p) => d5[nodes.findIndex((n) => n.port === p.addr.port)]! <= 6), 'and none beyond 6 hops');
  t.ok(book.size > sizeBefore, `peer list grew from ${sizeBefore} to ${book.size}`);
  const known = book.size;
  t.equal(nodes[5]!.discovery.reset(), known, 'RESET says how many it forgot');
  t.equal(book.size, 0, 'RESET emptied the peer list');

  // get through the overlay alone: no tracker, no --peer
  const out = tempDir(t);
  const r = await nodes[0]!.get(FILE, { outDir: out, noTracker: true, peerThreads: 0 });
  t.equal(r.name, FILE);
  t.ok(readFileSync(path.join(out, ...FILE.split('/'))).equals(data), 'byte-identical through holders found by the overlay');
});

t.test('bounds: flood of fresh ids, TTL above the maximum, bad answers', async (t) => {
  const data = randomBytes(prng(9), 1000);
  // a chain 0 - 1 - ... - 9: the length a message may travel is visible
  const nodes = await startNodes(t, 10, 9, data);
  for (let i = 0; i < 9; i++) {
    nodes[i]!.book.add({ ip: '127.0.0.1', port: nodes[i + 1]!.port }, 'neighbor');
    nodes[i + 1]!.book.add({ ip: '127.0.0.1', port: nodes[i]!.port }, 'neighbor');
  }
  // a hostile client talks to peer 0 directly, with a TTL far above the maximum
  const c = new FramedClient('127.0.0.1', nodes[0]!.port, { side: 'peerReply', hello: localHello(), localAddress: '127.0.0.2', handler: {} });
  await c.connect();
  t.teardown(() => c.destroy());
  c.write({ t: 'discover', sid: 'aaaaaaaaaaaaaaaa', ttl: 1_000_000, hops: 0 });
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && nodes.slice(0, MAX_TTL).some((n) => n.overlay.counters.received === 0)) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 300));
  nodes.forEach((n, i) => t.equal(n.overlay.counters.received > 0, i < MAX_TTL, `peer ${i} ${i < MAX_TTL ? 'got' : 'never got'} the message (TTL taken as ${MAX_TTL})`));

  // a flood of fresh ids from one connection: at most the burst and rate are handled
  const before = nodes[0]!.overlay.counters.received - nodes[0]!.overlay.counters.limited;
  for (let i = 0; i < 500; i++) c.write({ t: 'search', sid: (0x1000000000000000n + BigInt(i)).toString(16), pattern: 'x', ttl: 2, hops: 0 });
  const d2 = Date.now() + 5_000;
  while (Date.now() < d2 && nodes[0]!.overlay.counters.received < 500) await new Promise((r) => setTimeout(r, 25));
  const handled = nodes[0]!.overlay.counters.received - nodes[0]!.overlay.counters.limited - before;
  // what one sender gets handled is bounded by the peer's forward budget (200 a second) plus
  // its queue (32): the rest is refused, however fast it sends
  t.ok(nodes[0]!.overlay.counters.limited >= 250, `most of 500 fresh ids were refused (${nodes[0]!.overlay.counters.limited})`);
  t.ok(handled <= 200 + 32 + 8, `at most the forward budget and one queue were handled: ${handled}`);
  // an honest search from another connection still works
  const hits = await overlaySearch(nodes[3]!.overlay, 'needle', { ttl: 7, waitMs: 3_000 });
  t.equal(hits.length, 1, 'a search from elsewhere still finds the holder 6 hops away');

  // TTL 0 or out-of-range hop counts are not forwarded
  const r0 = nodes[1]!.overlay.counters.received;
  c.write({ t: 'search', sid: 'bbbbbbbbbbbbbbbb', pattern: 'x', ttl: 0, hops: 0 });
  await new Promise((r) => setTimeout(r, 300));
  t.equal(nodes[1]!.overlay.counters.received, r0, 'TTL 0 goes nowhere');
});

t.test('answers are checked: bad holders and names are dropped; versions merge by content id', async (t) => {
  const good = { name: 'a.bin', size: 5, mtime: 1, kind: 'other' as const, cid: 'a'.repeat(64) };
  const v = versionsOf('a.bin', [
    { file: good, holder: { ip: '127.0.0.1', port: 1 } },
    { file: good, holder: { ip: '127.0.0.1', port: 1 } },
    { file: good, holder: { ip: '127.0.0.1', port: 2 } },
    { file: { ...good, name: 'other.bin' }, holder: { ip: '127.0.0.1', port: 3 } },
  ]);
  t.equal(v.length, 1);
  t.same(v[0]!.holders.map((h) => h.port), [1, 2], 'duplicates collapsed, other names left out');
});

t.test('flood bookkeeping', async (t) => {
  const m = matcher('*a*a*a*a*a*a*a*a*a*a*b');
  const started = process.hrtime.bigint();
  t.equal(m('a'.repeat(4000)), false, 'a pattern built to backtrack does not match');
  t.ok(Number(process.hrtime.bigint() - started) / 1e6 < 2_000, 'and is decided in name × pattern steps, not exponentially');
  t.equal(matcher('*.MP4')('films/Holiday.mp4'), true, 'glob, case-insensitive');
  t.equal(matcher('h?liday')('holiday'), true);
  t.equal(matcher('h?liday')('films/holiday'), true, 'a glob without / is matched against the file name too');
  t.equal(matcher('f*/h?liday')('films/holiday'), true, 'a glob with / covers the whole path');
  t.equal(matcher('f*/h?liday')('x/films/holiday'), false);
  t.equal(matcher('h?liday')('films/holiday.mp4'), false, 'a glob covers the whole file name');
  t.equal(matcher('liday')('films/HOLIDAY.mp4'), true, 'substring without wildcards');
  t.equal(matcher('a.b')('axb'), false, 'dots are literal');

  const seen = new ExpiringMap<true>(3, 1000);
  for (const id of ['a', 'b', 'c', 'd']) seen.set(id, true, 0);
  t.equal(seen.size, 3, 'bounded in entries');
  t.equal(seen.has('a', 1), false, 'oldest out first');
  t.equal(seen.has('d', 1), true);
  t.equal(seen.has('d', 2000), false, 'expires');

  const rl = new RateLimiter(10, 5);
  let ok = 0;
  for (let i = 0; i < 100; i++) if (rl.take('k', 0)) ok++;
  t.equal(ok, 5, 'burst');
  t.equal(rl.take('k', 1000), true, 'refills with time');

  const book = new PeerBook(3);
  book.setSelf([{ ip: '127.0.0.1', port: 9 }]);
  t.equal(book.add({ ip: '127.0.0.1', port: 9 }, 'discover'), false, 'never its own neighbour');
  book.add({ ip: '127.0.0.1', port: 1 }, 'neighbor');
  book.add({ ip: '127.0.0.1', port: 2 }, 'tracker');
  book.add({ ip: '127.0.0.1', port: 3 }, 'lan');
  book.add({ ip: '127.0.0.1', port: 4 }, 'discover');
  t.equal(book.size, 3, 'bounded');
  t.ok(book.has({ ip: '127.0.0.1', port: 1 }), 'a named neighbour is never pushed out');
  t.same(book.neighbours(2).map((k) => k.port), [1, 3], 'named first, then LAN');
  book.remove({ ip: '127.0.0.1', port: 3 }, 'lan');
  t.notOk(book.has({ ip: '127.0.0.1', port: 3 }), 'forgotten with its last source');
});
