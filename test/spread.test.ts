/**
 * A seeder's spread (scheduling/spread.ts) under a fake-`have` ping-pong, and its order.
 *
 * Hostile review: a client with two connections (so spreading starts) answered every `have` the
 * seeder pushed with the same `have`; each answer made the picker scan every chunk (3.9 ms of CPU
 * per 60-byte message at 65,536 chunks). Picks now walk cursors that only move forward: the work
 * is counted in cursor steps (`counters.steps`), which must stay about one per message whatever
 * the content's size, and at most 3 × chunks over a peer's life. Pure, no network.
 */
import t from 'tap';
import { Spread, SPREAD_WINDOW } from '../lib/scheduling/spread.js';
import { Spreads } from '../lib/peer/spreads.js';
import { makeManifest } from '../lib/manifest.js';
import { fullBitfield, bitSet } from '../lib/scheduling/availability.js';
import type { ChunkSource } from '../lib/peer/source.js';
import { prng } from './helpers/prng.js';

const listOf = (bits: Uint8Array, chunks: number) => [...Array(chunks).keys()].filter((i) => bitSet(bits, i));

/** The second connection answers each chunk shown to it with `have` for it, `messages` times. */
function pingPong(chunks: number, messages: number): { steps: number; messages: number; usPerMessage: number; distinct: number } {
  const s = new Spread(chunks, prng(1));
  s.join(1); // the first connection: sees everything, spreading starts with the second
  const queue = listOf(s.join(2), chunks);
  const steps0 = s.counters.steps;
  const seen = new Set<number>(queue);
  let n = 0;
  const t0 = process.hrtime.bigint();
  while (n < messages && queue.length) {
    const c = queue.shift()!;
    n++;
    for (const more of s.had(2, c)) {
      seen.add(more);
      queue.push(more);
    }
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3;
  return { steps: s.counters.steps - steps0, messages: n, usPerMessage: us / n, distinct: seen.size };
}

t.test('fake-have ping-pong: the work per message does not grow with the content', async (t) => {
  const small = pingPong(4_096, 4_000);
  const big = pingPong(65_536, 20_000);
  for (const [name, r] of [['4,096 chunks', small], ['65,536 chunks', big]] as const) {
    t.comment(`${name}: ${r.messages} messages, ${r.steps} cursor steps (${(r.steps / r.messages).toFixed(2)} a message), ${r.usPerMessage.toFixed(2)} µs a message`);
    t.ok(r.steps <= 2 * r.messages + SPREAD_WINDOW, `${name}: ${r.steps} steps for ${r.messages} messages (was a scan of every chunk each)`);
    t.equal(r.distinct, r.messages + SPREAD_WINDOW, `${name}: each message was answered with a chunk not shown before`);
  }
  // generous: the scan it replaces took ~1,000-4,000 µs a message at 65,536 chunks
  t.ok(big.usPerMessage < 50, `65,536 chunks: ${big.usPerMessage.toFixed(2)} µs a message (< 50)`);
});

t.test('a peer\'s picks walk at most 3 × chunks steps over its life, whatever it claims', async (t) => {
  const chunks = 65_536;
  const rand = prng(4);
  const s = new Spread(chunks, rand);
  s.join(1);
  // ten honest peers take a few thousand chunks (sent by us), then a peer arrives claiming
  // almost everything, and says `have` for chunks one by one in a random order
  for (let p = 2; p <= 11; p++) s.join(p);
  for (let k = 0; k < 3_000; k++) {
    const p = 2 + (k % 10);
    const c = Math.floor(rand() * chunks);
    s.sentTo(p, c);
    s.had(p, c);
  }
  const claims = fullBitfield(chunks);
  for (let k = 0; k < 500; k++) {
    const c = Math.floor(rand() * chunks);
    claims[c >> 3]! &= ~(1 << (c & 7));
  }
  const before = s.counters.steps;
  const queue = listOf(s.join(99, claims), chunks);
  let messages = 0;
  // it answers every chunk shown with `have`, and says `have` for random ones in between
  while (queue.length && messages < 50_000) {
    messages += 2;
    queue.push(...s.had(99, queue.shift()!), ...s.had(99, Math.floor(rand() * chunks)));
  }
  const steps = s.counters.steps - before;
  t.comment(`a late peer claiming ~99% of the chunks: ${messages} haves until nothing was left to show it, ${steps} cursor steps`);
  t.ok(steps <= 3 * chunks, `${steps} steps ≤ 3 × ${chunks}`);
  t.ok(steps > chunks / 2, 'and it did walk most of the content (the bound is not vacuous)');
});

t.test('spread order: fresh chunks first, distinct; then chunks shown and not sent, the first shown; then sent ones', async (t) => {
  const s = new Spread(8, prng(3), 2);
  t.equal(listOf(s.join(1), 8).length, 8, 'the first peer sees everything');
  const windows = [2, 3, 4, 5].map((p) => listOf(s.join(p), 8));
  t.same(windows.map((w) => w.length), [2, 2, 2, 2], 'later peers see a window of 2');
  t.equal(new Set(windows.flat()).size, 8, 'all distinct: fresh chunks go first');
  const [a, b] = windows[0]!; // peer 2's, given out first
  s.sentTo(1, a!); // chunk a went out (to the peer that sees everything)
  const six = listOf(s.join(6), 8);
  t.equal(six.length, 2);
  t.ok(six.includes(b!) && six.some((c) => windows[1]!.includes(c)), `no fresh chunk left: unsent ones, the first shown (peer 2's other, one of peer 3's), not the sent one (${six} against ${windows.map((w) => `[${w}]`)})`);
  // peer 6 has every chunk not sent yet: only the sent one is left to show it
  const more: number[] = [];
  for (const c of [...windows.flat()].filter((c) => c !== a)) more.push(...s.had(6, c));
  t.equal(more.indexOf(a!), more.length - 1, `the chunk already sent comes last, once every unsent one is shown to it (shown in turn: ${more})`);
  t.notOk(s.finished);
  const rest = new Map<number, number[]>();
  for (const c of windows.flat()) for (const [p, cs] of s.sentTo(1, c)) rest.set(p, [...(rest.get(p) ?? []), ...cs]);
  t.ok(s.finished, 'every chunk sent once: finished');
  t.same(rest.get(3)?.length, 6, 'the rest is shown to everyone at once');
  t.equal(listOf(s.join(7), 8).length, 8, 'a newcomer sees everything');
});

t.test('spread: with many peers trading, no chunk is shown to a second peer while a fresh one is left', async (t) => {
  const chunks = 2_000;
  const rand = prng(8);
  const s = new Spread(chunks, rand);
  s.join(0);
  const shownTo = new Uint8Array(chunks);
  const windows = new Map<number, number[]>();
  const show = (p: number, cs: number[]) => {
    for (const c of cs) shownTo[c]!++;
    windows.set(p, [...(windows.get(p) ?? []), ...cs]);
  };
  for (let p = 1; p <= 20; p++) show(p, listOf(s.join(p), chunks));
  let shownOnce = 0;
  let secondBeforeFresh = 0;
  for (let round = 0; shownOnce < chunks && round < 10_000; round++) {
    // a random peer gets one of its shown chunks from us
    const p = 1 + Math.floor(rand() * 20);
    const w = windows.get(p) ?? [];
    if (w.length) {
      const c = w.splice(Math.floor(rand() * w.length), 1)[0]!;
      for (const [q, cs] of s.sentTo(p, c)) show(q, cs);
    }
    shownOnce = shownTo.filter((n) => n > 0).length;
    if (shownOnce < chunks && [...shownTo].some((n) => n > 1)) secondBeforeFresh++;
    if (secondBeforeFresh) break;
  }
  t.equal(shownOnce, chunks, 'every chunk was shown');
  t.equal(secondBeforeFresh, 0, 'no chunk shown to two peers before every chunk was shown to one');
});

t.test('spreads: a content whose last watcher left is dropped', async (t) => {
  const m = makeManifest(16 << 20, 1 << 20, Buffer.alloc(16 * 32, 1));
  const bits = fullBitfield(16);
  const src: ChunkSource = { manifest: m, complete: true, has: () => true, bitfield: () => bits, open: () => Promise.reject(new Error('not read')) };
  const sp = new Spreads(prng(2));
  const byCid = (sp as unknown as { byCid: Map<string, unknown> }).byCid;
  sp.join(1, src, undefined, () => {});
  sp.join(2, src, undefined, () => {});
  sp.leave(1);
  t.equal(byCid.size, 1, 'kept while one watches');
  sp.leave(2);
  t.equal(byCid.size, 0, 'dropped with the last');
});
