import t from 'tap';
import { ChunkTable } from '../lib/scheduling/chunk-table.js';
import { Availability, fullBitfield, bitSet } from '../lib/scheduling/availability.js';
import { pickRarest, type RarestContext } from '../lib/scheduling/rarest.js';
import { prng } from './helpers/prng.js';

const bits = (count: number, chunks: number[]) => {
  const b = new Uint8Array(Math.ceil(count / 8));
  for (const i of chunks) b[i >> 3]! |= 1 << (i & 7);
  return b;
};

t.test('availability: bitfields and haves count holders per chunk; a peer that leaves takes its counts', async (t) => {
  const a = new Availability(10);
  a.setPeer(1, fullBitfield(10));
  a.setPeer(2, bits(10, [0, 1, 9]));
  t.same([...a.counts], [2, 2, 1, 1, 1, 1, 1, 1, 1, 2]);
  t.ok(a.have(2, 5));
  t.notOk(a.have(2, 5), 'a have repeated counts once');
  t.notOk(a.have(2, 10), 'out of range');
  t.notOk(a.have(2, -1));
  t.notOk(a.have(7, 1), 'unknown peer');
  t.equal(a.counts[5], 2);
  t.ok(a.isComplete(1));
  t.equal(a.countOf(2), 4);
  a.removePeer(1);
  t.same([...a.counts], [1, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
  a.setPeer(3, Uint8Array.from([0xff, 0xff, 0xff]));
  t.equal(a.countOf(3), 10, 'bits past the last chunk are ignored');
  t.ok(bitSet(fullBitfield(10), 9));
  t.notOk(bitSet(fullBitfield(10), 10));
});

function ctx(over: Partial<RarestContext> & { table: ChunkTable; counts: Uint16Array }): RarestContext {
  return {
    peerHas: () => true,
    room: 8,
    maxRun: 4,
    random: prng(5),
    randomOrder: false,
    stuckSeconds: 5,
    idle: false,
    ownChunkSeconds: 0.01,
    holderEta: () => 0.05,
    ...over,
  };
}

t.test('rarest first: only chunks the peer has; the rarest win; a run extends over equally rare chunks', async (t) => {
  const table = new ChunkTable(12);
  const counts = Uint16Array.from([3, 3, 1, 1, 1, 2, 1, 3, 3, 3, 1, 1]);
  const has = (i: number) => i !== 10 && i !== 11;
  const p = pickRarest(ctx({ table, counts, peerHas: has }));
  t.ok(p && !p.duplicate);
  t.ok([2, 3, 4, 6].includes(p!.start), `started at a rarest chunk the peer has (${p!.start})`);
  for (let i = p!.start; i < p!.end; i++) t.equal(counts[i], 1, `chunk ${i} in the run is as rare`);
  table.assign(2, 5);
  table.assign(6, 7);
  const q = pickRarest(ctx({ table, counts, peerHas: has }));
  t.same([q!.start, q!.end], [5, 6], 'next rarest that it has: chunk 5 (count 2)');
  t.equal(pickRarest(ctx({ table, counts, peerHas: () => false })), null, 'a peer with nothing we miss gets nothing');
});

t.test('rarest first: ties broken at random, so peers spread over the file', async (t) => {
  const starts = new Set<number>();
  const rand = prng(42);
  for (let k = 0; k < 50; k++) {
    const table = new ChunkTable(64);
    const counts = new Uint16Array(64).fill(1);
    starts.add(pickRarest(ctx({ table, counts, random: rand, maxRun: 1 }))!.start);
  }
  t.ok(starts.size > 25, `${starts.size} distinct starting chunks in 50 picks`);
});

t.test('random order for the first chunks ignores rarity', async (t) => {
  const table = new ChunkTable(8);
  const counts = Uint16Array.from([1, 9, 9, 9, 9, 9, 9, 9]);
  const seen = new Set<number>();
  const rand = prng(7);
  for (let k = 0; k < 40; k++) seen.add(pickRarest(ctx({ table, counts, random: rand, randomOrder: true, maxRun: 1 }))!.start);
  t.ok(seen.size > 4, 'many different chunks, not just the rarest');
});

t.test('endgame: an idle peer duplicates the chunk delivered last, only one it has, a third holder only once both are stuck', async (t) => {
  const table = new ChunkTable(6);
  const counts = new Uint16Array(6).fill(2);
  table.assign(0, 6);
  const eta = (i: number) => (i === 4 ? 3 : i === 5 ? 4 : 0.05);
  t.equal(pickRarest(ctx({ table, counts, holderEta: eta })), null, 'busy peers get no duplicates');
  t.same(pickRarest(ctx({ table, counts, idle: true, holderEta: eta })), { start: 5, end: 6, duplicate: true });
  t.same(pickRarest(ctx({ table, counts, idle: true, holderEta: eta, peerHas: (i) => i !== 5 })), { start: 4, end: 5, duplicate: true }, 'only chunks it has');
  table.assign(5, 6);
  t.same(pickRarest(ctx({ table, counts, idle: true, holderEta: eta }))?.start, 4, 'chunk 5 has two holders now');
  t.equal(pickRarest(ctx({ table, counts, idle: true, holderEta: eta, ownChunkSeconds: 10 })), null, 'not when this peer would be slower');
  // both holders of chunk 5 stuck on it for the first-chunk deadline: a third may take it
  const stuck = (i: number) => (i === 5 ? 6 : 0.05);
  t.same(pickRarest(ctx({ table, counts, idle: true, holderEta: stuck, stuckSeconds: 5 })), { start: 5, end: 6, duplicate: true }, 'a third holder once both are stuck');
  t.not(pickRarest(ctx({ table, counts, idle: true, holderEta: stuck, stuckSeconds: 7 }))?.start, 5, 'not before (the rule of two holds)');
});

t.test('no duplicates before the endgame: while any chunk is unasked, an idle peer with nothing we lack stays idle', async (t) => {
  const table = new ChunkTable(6);
  const counts = new Uint16Array(6).fill(1);
  table.assign(0, 5); // chunk 5 is asked of nobody: some other peer may have it later
  const eta = () => 4;
  const peerHas = (i: number) => i < 5; // this peer has nothing that is unasked
  t.equal(table.missing, 1);
  t.equal(pickRarest(ctx({ table, counts, idle: true, holderEta: eta, peerHas })), null, 'no duplicate while a chunk is unasked');
  table.assign(5, 6);
  t.equal(table.missing, 0, 'every chunk left is in flight');
  t.same(pickRarest(ctx({ table, counts, idle: true, holderEta: eta, peerHas })), { start: 0, end: 1, duplicate: true }, 'then the endgame duplicates');
  table.release(5);
  t.equal(table.missing, 1, 'a released chunk is unasked again');
  table.verify(5);
  t.equal(table.missing, 0, 'and verified (by another holder) leaves the count');
});

t.test('no starvation: a peer that alone has some chunks gets them asked of it', async (t) => {
  // two peers; peer B alone has chunks 8..9. Alternate picks; every chunk ends assigned.
  const table = new ChunkTable(10);
  const av = new Availability(10);
  av.setPeer(0, bits(10, [0, 1, 2, 3, 4, 5, 6, 7]));
  av.setPeer(1, fullBitfield(10));
  const rand = prng(3);
  const got: Record<number, number[]> = { 0: [], 1: [] };
  for (let round = 0; round < 10; round++) {
    for (const peer of [0, 1]) {
      const p = pickRarest(ctx({ table, counts: av.counts, peerHas: (i) => av.has(peer, i), random: rand, maxRun: 1, room: 1 }));
      if (!p) continue;
      table.assign(p.start, p.end);
      got[peer]!.push(p.start);
    }
  }
  t.same([...got[0]!, ...got[1]!].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every chunk asked for exactly once');
  t.ok(got[1]!.includes(8) && got[1]!.includes(9), 'the rare chunks went to the only peer that has them');
  t.ok(got[1]!.indexOf(8) < 2 && got[1]!.indexOf(9) < 2, 'and first: they are the rarest');
});

t.test('request book: open, deliver, fail, end; budget and owners follow', async (t) => {
  const { RequestBook } = await import('../lib/scheduling/request-book.js');
  const { ByteBudget } = await import('../lib/scheduling/budget.js');
  const table = new ChunkTable(10);
  const budget = new ByteBudget(100);
  const book = new RequestBook(table, budget, 10);
  const r = book.open(1, 0, 4, false, 0);
  t.equal(book.inflight(1), 4);
  t.equal(budget.inFlight, 40);
  t.equal(book.ownerOf(2), 1);
  t.same(book.delivered(r.id, 0, 5), r);
  t.equal(book.delivered(r.id, 0, 5), null, 'a chunk delivered twice counts once');
  t.equal(book.delivered(r.id, 9, 5), null, 'a chunk never asked for is not accounted');
  t.equal(budget.inFlight, 40, 'a delivered chunk keeps its budget until written');
  t.ok(book.failed(r.id, 1));
  t.equal(table.isMissing(1), true, 'a failed chunk is missing again');
  t.equal(budget.inFlight, 30);
  t.equal(book.eta(1, 3, 10), 2, 'chunk 3 is second in the queue: 2 chunks at 10 B/s');
  t.same(book.timedOut(20, 10).map((x) => x.id), [r.id]);
  t.equal(book.end(r.id), 2, 'two chunks never came');
  t.ok(table.isMissing(2) && table.isMissing(3));
  t.equal(book.inflight(1), 0);
  t.equal(budget.inFlight, 10, 'only the delivered, unwritten chunk still holds budget');
  t.equal(book.size, 0);
  const d = book.open(2, 5, 6, false, 30);
  const dup = book.open(3, 5, 6, true, 31);
  t.equal(book.ownerOf(5), 2, 'a duplicate does not take ownership');
  table.verify(5);
  t.same(book.redundant().map((x) => x.id).sort(), [d.id, dup.id].sort(), 'both are redundant once the chunk is verified');
  book.endPeer(2);
  book.endPeer(3);
  t.equal(book.size, 0);
});

t.test('request book: a request the peer queues (busy, no byte yet) is waiting until bytes of it arrive', async (t) => {
  const { RequestBook } = await import('../lib/scheduling/request-book.js');
  const { ByteBudget } = await import('../lib/scheduling/budget.js');
  const table = new ChunkTable(10);
  const book = new RequestBook(table, new ByteBudget(1000), 10);
  const a = book.open(1, 0, 2, false, 0);
  const b = book.open(1, 2, 3, false, 0);
  book.waiting(a.id, 100);
  book.waiting(a.id, 500);
  t.equal(a.waitingSince, 100, 'the first busy counts');
  t.same([...book.waitingLonger(1000, 1000)], [], 'not yet a second');
  t.same([...book.waitingLonger(1100, 1000)].map((r) => r.id), [a.id, b.id], 'a second in the queue, and the request behind it with it');
  book.waiting(b.id, 200);
  book.started(b.id);
  book.waiting(b.id, 300);
  t.equal(b.waitingSince, 0, 'a request that started is never waiting again');
  t.same([...book.waitingLonger(5000, 1000)].map((r) => r.id), [a.id]);
  const c = book.open(1, 3, 4, false, 5000);
  const other = book.open(2, 4, 5, false, 5000);
  t.same([...book.waitingLonger(5000, 1000)].map((r) => r.id), [a.id, c.id], 'a later request to the same peer waits behind; another peer\'s does not');
  t.ok(other);
  book.delivered(a.id, 0, 5000);
  t.same([...book.waitingLonger(6000, 1000)], [], 'nor one with a chunk delivered (and nothing is behind it any more)');
});

t.test('planner: a request waiting in a busy peer\'s queue moves, once, to an idle holder of its chunks, not to one without them, that queues too or has requests in flight', async (t) => {
  const { RequestBook } = await import('../lib/scheduling/request-book.js');
  const { ByteBudget } = await import('../lib/scheduling/budget.js');
  const { PeerStats } = await import('../lib/scheduling/peer-stats.js');
  const { RequestPlanner, MOVE_WAITING_AFTER_MS } = await import('../lib/download/requests.js');
  type Sent = { peer: number; type: string; from?: number; to?: number };
  const sent: Sent[] = [];
  const table = new ChunkTable(8);
  const budget = new ByteBudget(1 << 30);
  const book = new RequestBook(table, budget, 1 << 20);
  const availability = new Availability(8);
  const peers = new Map<number, any>(); // eslint-disable-line @typescript-eslint/no-explicit-any
  const peer = (id: number, has: number[], rate: number) => {
    const stats = new PeerStats(0);
    stats.rate = rate;
    const p = { id, address: `p${id}`, state: 'active', stats, busyAt: 0, firstRequestAt: 0, host: { send: (m: { type: string; from?: number; to?: number }) => sent.push({ peer: id, ...m }) } };
    peers.set(id, p);
    availability.setPeer(id, bits(8, has));
    return p;
  };
  const seeder = peer(1, [0, 1, 2, 3, 4, 5, 6, 7], 1e6);
  peer(2, [0, 1], 2e6); // has the chunks, idle
  peer(3, [0], 9e6); // faster, but lacks chunk 1
  const q = peer(4, [0, 1], 9e6); // has them, but queues us too
  q.busyAt = 0;
  const m = { cid: 'c'.repeat(64), size: 8 << 20, chunkBytes: 1 << 20 } as unknown as import('../lib/manifest.js').Manifest;
  const planner = new RequestPlanner({ m, table, budget, book, availability, peers, random: () => 0.5, resumedChunks: 0, stuckMs: 5_000 });
  const r = book.open(seeder.id, 0, 2, false, 0);
  const t0 = 10_000;
  q.busyAt = t0 + 500; // peer 4 said busy half a second ago
  book.waiting(r.id, t0);
  t.equal(planner.moveWaiting(t0 + MOVE_WAITING_AFTER_MS - 1), 0, 'not before MOVE_WAITING_AFTER_MS');
  t.equal(planner.moveWaiting(t0 + MOVE_WAITING_AFTER_MS), 1, 'then it moves');
  t.same(sent.map((x) => [x.peer, x.type, x.from, x.to]), [[1, 'cancel', undefined, undefined], [2, 'get', 0, 2]], 'cancelled at the seeder, asked of peer 2 (peer 3 lacks chunk 1, peer 4 queues)');
  t.equal(book.inflight(1), 0);
  t.equal(book.inflight(2), 2);
  t.equal(book.ownerOf(1), 2, 'peer 2 owns the chunks now');
  t.equal(table.missing, 6, 'the chunks stayed assigned: nobody else is asked for them');
  sent.length = 0;
  const again = [...book.requestsOf(2)][0]!;
  book.waiting(again.id, t0 + 2_000);
  peers.get(2)!.busyAt = t0 + 2_000;
  q.busyAt = 0;
  t.equal(planner.moveWaiting(t0 + 3_100), 0, 'a moved request does not move again');
  // a request to a peer that has requests of ours in flight is not moved there
  const r2 = book.open(seeder.id, 2, 3, false, t0);
  availability.have(2, 2);
  book.waiting(r2.id, t0);
  t.equal(planner.moveWaiting(t0 + 3_200), 0, 'peer 2 is not idle (the moved request is in flight there)');
  availability.have(4, 2);
  t.equal(planner.moveWaiting(t0 + 3_300), 1, 'peer 4 is idle and stopped queueing: it takes it');
  t.same(sent.map((x) => [x.peer, x.type, x.from]), [[1, 'cancel', undefined], [4, 'get', 2]]);
});

/**
 * Sessions that have had their first chunk (which goes first, and beside the slots after
 * FIRST_WAIT_MS: tested in "a newcomer's first chunk"), so that what follows is about the slots
 * themselves.
 */
function warm(s: { want(session: number, key: string, now: number, grant: () => void): void; acked(session: number, key: string, now: number): void }, ...sessions: number[]): void {
  for (const id of sessions) {
    s.want(id, `warm:${id}`, 0, () => {});
    s.acked(id, `warm:${id}`, 0);
  }
}

t.test('upload slots: a newcomer\'s first chunk goes before the others\' chunks, and beside full slots once it waited FIRST_WAIT_MS; its next ones wait their turn', async (t) => {
  const { UploadSlots, FIRST_WAIT_MS } = await import('../lib/scheduling/upload-slots.js');
  const s = new UploadSlots(2, 5_000);
  const sent: string[] = [];
  const want = (session: number, key: string, now: number) => s.want(session, key, now, () => sent.push(`${session}:${key}`));
  // 50 requesters that never acknowledge arrive first (clients that never read)
  for (let id = 1; id <= 50; id++) want(id, `a${id}`, id);
  t.same(sent, ['1:a1'], 'the first takes the one slot of sessions that have acknowledged nothing; the other first chunks wait');
  t.equal(s.nextFirstAt(), 2 + FIRST_WAIT_MS, 'the next first chunk goes beside the slots FIRST_WAIT_MS after it asked');
  s.tick(50 + FIRST_WAIT_MS);
  t.equal(sent.length, 50, 'each got its first chunk once it had waited FIRST_WAIT_MS');
  t.equal(s.nextFirstAt(), null, 'no first chunk waits');
  for (let id = 1; id <= 50; id++) want(id, `b${id}`, 1_000 + id);
  t.equal(sent.length, 50, 'their next chunks wait (the slots are taken)');
  want(99, 'h1', 1_100);
  t.equal(sent.length, 50, 'an honest newcomer arriving after them waits too...');
  s.tick(1_100 + FIRST_WAIT_MS - 1);
  t.equal(sent.length, 50, '...less than FIRST_WAIT_MS...');
  s.tick(1_100 + FIRST_WAIT_MS);
  t.equal(sent.at(-1), '99:h1', '...and no longer: its first chunk goes beside the slots');
  s.acked(99, 'h1', 1_400);
  s.tick(7_000); // the never-acknowledged ones become laggards: one slot for all of them
  want(99, 'h2', 7_001);
  t.equal(sent.at(-1), '99:h2', 'and, acknowledging, is served beside them (laggards share one slot)');
  s.drop(99, 7_002);
  want(99, 'x', 7_003);
  t.equal(sent.at(-1), '99:h2', 'a session ended and started again has acknowledged nothing: it waits...');
  s.tick(7_003 + FIRST_WAIT_MS);
  t.equal(sent.at(-1), '99:x', '...as a newcomer: its first chunk goes FIRST_WAIT_MS later');
});

t.test('upload slots: a newcomer whose first chunk was withdrawn while it waited (its request moved elsewhere) is still a newcomer', async (t) => {
  const { UploadSlots, FIRST_WAIT_MS } = await import('../lib/scheduling/upload-slots.js');
  const s = new UploadSlots(1, 60_000);
  warm(s, 1, 2);
  const sent: string[] = [];
  const want = (session: number, key: string, now: number) => s.want(session, key, now, () => sent.push(`${session}:${key}`));
  want(1, 'held', 10); // never acknowledged: the one slot stays taken
  want(2, 'other', 11); // a peer that had its first chunk waits
  want(9, 'a', 20);
  t.ok(s.withdraw(9, 'a'), 'the newcomer\'s first chunk is withdrawn (its request was cancelled)');
  t.ok(s.newcomer(9), 'it was never sent: still a newcomer');
  want(9, 'b', 300);
  t.equal(s.nextFirstAt(), 300 + FIRST_WAIT_MS, 'its next chunk is a first chunk');
  s.tick(300 + FIRST_WAIT_MS);
  t.same(sent, ['1:held', '9:b'], 'and goes beside the slots FIRST_WAIT_MS after it asked, before the others\' waiting chunk');
  t.notOk(s.newcomer(9), 'now it has had its first chunk');
});

/**
 * Hostile review 31: a peer that opened a connection a second, asked each for one chunk and never
 * acknowledged held the upload slots for good (each fresh session counted as one that
 * acknowledges; reconnecting forgot that it lagged): a warmed honest peer acknowledging every
 * chunk within 20 ms got ~300 chunks a minute instead of 60,000 (real sockets: 0 in 8 s). Now
 * sessions that never acknowledged share one slot with the laggards.
 */
t.test('upload slots: sessions that reconnect to stay newcomers cannot starve a peer that acknowledges', async (t) => {
  const { UploadSlots } = await import('../lib/scheduling/upload-slots.js');
  const s = new UploadSlots(4, 5_000);
  let got = 0;
  let next = 0;
  let waiting = false;
  const acks: Array<[number, string]> = [];
  const closes: Array<[number, number]> = [];
  let sid = 100;
  const honest = (now: number) => {
    waiting = true;
    const key = `d${next++}`;
    s.want(1, key, now, () => {
      waiting = false;
      got++;
      acks.push([now + 20, key]);
    });
  };
  for (let now = 0; now < 60_000; now++) {
    for (let i = acks.length - 1; i >= 0; i--) if (acks[i]![0] <= now) s.acked(1, acks.splice(i, 1)[0]![1], now);
    if (!waiting) honest(now);
    if (now % 1_000 === 0) {
      const id = sid++;
      s.want(id, `x${id}`, now, () => {});
      closes.push([now + 5_050, id]);
    }
    for (let i = closes.length - 1; i >= 0; i--) if (closes[i]![0] <= now) s.drop(closes.splice(i, 1)[0]![1], now);
    if (now % 100 === 0) s.tick(now);
  }
  t.ok(got > 10_000, `the honest peer got ${got} chunks in a minute (60,001 alone)`);
});

t.test('upload slots: sessions that acknowledge every other chunk cannot starve a peer that acknowledges them all', async (t) => {
  const { UploadSlots } = await import('../lib/scheduling/upload-slots.js');
  const s = new UploadSlots(4, 5_000);
  warm(s, 1, 2, 3, 4, 5);
  let got = 0;
  let next = 0;
  let waiting = false;
  const acks: Array<[number, number, string]> = [];
  const again: number[] = [];
  const granted = new Map<number, number>();
  let now = 1;
  // each of sessions 2..5 always has a chunk waiting; it acknowledges every other one at once
  // (that clears its laggard mark) and never the others (each holds a slot for ackTimeoutMs)
  const attacker = (id: number) => {
    const key = `x${id}:${now}`;
    s.want(id, key, now, () => {
      const n = (granted.get(id) ?? 0) + 1;
      granted.set(id, n);
      if (n % 2 === 1) acks.push([now + 1, id, key]);
      again.push(id);
    });
  };
  for (let id = 2; id <= 5; id++) attacker(id);
  for (; now < 60_000; now++) {
    for (let i = acks.length - 1; i >= 0; i--) if (acks[i]![0] <= now) { const [, id, key] = acks.splice(i, 1)[0]!; s.acked(id, key, now); }
    while (again.length > 0) attacker(again.shift()!);
    if (!waiting) {
      waiting = true;
      const key = `d${next++}`;
      s.want(1, key, now, () => {
        waiting = false;
        got++;
        acks.push([now + 20, 1, key]);
      });
    }
    if (now % 100 === 0) s.tick(now);
  }
  // 4 slots, chunks acknowledged 20 ms after they go: 12,000 a minute under contention. The four
  // hold every slot until their first timeouts (5 s), then share one slot for good (they never
  // acknowledge REDEEM_ACKS in a row): 3 slots for 55 s is ~8,250. Before: 17.
  t.ok(got > 7_000, `the honest peer got ${got} chunks in a minute (~60,000 alone, ~8,250 with three of the four slots)`);
});

t.test('upload slots: newcomers\' first chunks go before chunks for peers that had theirs, whatever the rarity', async (t) => {
  const { UploadSlots } = await import('../lib/scheduling/upload-slots.js');
  const s = new UploadSlots(1, 5_000, (key) => (key === 'common' ? 5 : 0));
  warm(s, 1, 3);
  const sent: string[] = [];
  const want = (session: number, key: string, now: number) => s.want(session, key, now, () => sent.push(`${session}:${key}`));
  want(3, 'other', 5);
  want(1, 'rare0', 10);
  want(1, 'rare1', 11);
  want(2, 'common', 12);
  t.same(sent, ['3:other'], 'one slot, taken; the rest waits');
  s.acked(3, 'other', 20);
  t.same(sent, ['3:other', '2:common'], 'the newcomer\'s first chunk went next, though another peer waits for rarer ones');
  s.acked(2, 'common', 30);
  t.same(sent, ['3:other', '2:common', '1:rare0', '1:rare1'], 'then the other peer\'s (alone now: both at once)');
});

t.test('upload slots: a lone downloader is never held back; under contention distinct chunks go first, round robin, acks free slots', async (t) => {
  const { UploadSlots } = await import('../lib/scheduling/upload-slots.js');
  const k = (c: number) => UploadSlots.key('cid', c);
  const s = new UploadSlots(2, 1000);
  warm(s, 2, 3, 4, 5, 6, 7);
  const sent: string[] = [];
  const want = (session: number, c: number, now: number) => s.want(session, k(c), now, () => sent.push(`${session}:${c}`));
  for (let c = 0; c < 6; c++) want(1, c, 0);
  t.equal(sent.length, 6, 'one session alone: everything at once');
  for (let c = 0; c < 6; c++) s.acked(1, k(c), 1);
  sent.length = 0;
  // three sessions: 1 and 2 both want chunk 0 (already uploaded once), 3 wants chunk 9 (never)
  want(1, 0, 10);
  want(2, 0, 11);
  t.same(sent, ['1:0', '2:0'], 'two slots');
  want(3, 9, 12);
  want(1, 1, 13);
  t.same(sent, ['1:0', '2:0'], 'full: the others wait');
  s.acked(1, k(0), 20);
  t.same(sent.at(-1), '3:9', 'a freed slot goes to the chunk uploaded fewest times');
  s.acked(2, k(0), 21);
  t.same(sent.at(-1), '1:1');
  s.tick(10_000);
  t.equal(s.inTransit, 0, 'chunks never acknowledged free their slots');
  t.equal(s.counters.timedOut, 2);
  want(2, 7, 10_001);
  want(3, 8, 10_001);
  want(4, 6, 10_002);
  t.ok(sent.includes('4:6') || sent.includes('2:7'), 'after a timeout, the laggards wait behind others');
  s.drop(3, 10_003);
  s.drop(2, 10_003);
  s.drop(4, 10_003);
  t.equal(s.inTransit + s.queued, 0, 'dropping sessions frees everything');
  // a waiting chunk withdrawn (its request was cancelled) is never granted
  want(5, 1, 20_000);
  want(6, 2, 20_000);
  want(7, 3, 20_001);
  t.equal(s.queued, 1);
  t.ok(s.withdraw(7, k(3)), 'withdrawn while waiting');
  t.notOk(s.withdraw(7, k(3)), 'once');
  s.acked(5, k(1), 20_002);
  t.notOk(sent.includes('7:3'), 'and not granted when a slot frees');
});

t.test('upload slots: readers that never acknowledge share one slot; an honest downloader beside four of them keeps its pace', async (t) => {
  const { UploadSlots } = await import('../lib/scheduling/upload-slots.js');
  // a simulated minute in 10 ms steps: session 1 acknowledges each chunk 50 ms after it starts,
  // sessions 2..5 never do and always want another chunk; the server ticks every 250 ms
  const run = (liars: number): number => {
    const s = new UploadSlots(4, 5_000);
    let honest = 0;
    let next = 0;
    const pendingAck: { key: string; at: number }[] = [];
    const wantHonest = (now: number) => {
      const key = UploadSlots.key('cid', next++ % 64);
      s.want(1, key, now, () => pendingAck.push({ key, at: now + 50 }));
    };
    const wantLiar = (id: number, now: number) => s.want(id, UploadSlots.key('cid', 100 + id), now, () => setImmediateLiar.push(id));
    const setImmediateLiar: number[] = [];
    for (let id = 2; id < 2 + liars; id++) wantLiar(id, 0);
    wantHonest(0);
    for (let now = 0; now <= 60_000; now += 10) {
      for (let i = pendingAck.length - 1; i >= 0; i--) {
        if (pendingAck[i]!.at > now) continue;
        const { key } = pendingAck.splice(i, 1)[0]!;
        honest++;
        s.acked(1, key, now);
        wantHonest(now);
      }
      // a liar granted a chunk asks for the next one at once
      while (setImmediateLiar.length) wantLiar(setImmediateLiar.shift()!, now);
      if (now % 250 === 0) s.tick(now);
    }
    return honest;
  };
  const alone = run(0);
  const beside = run(4);
  t.ok(alone > 1_000, `alone: ${alone} chunks in a minute`);
  t.ok(beside > alone / 2, `beside 4 readers that never acknowledge: ${beside} chunks (was 11 when they could hold every slot)`);
  const many = run(32);
  t.ok(many > alone / 4, `beside 32 of them: ${many} chunks (each takes a slot until its first ack timeout marks it, 5 s; was 2)`);
});

t.test('upload slots with requesters\' chunks: the chunk fewest of them have goes first; none starves; counts follow requests, haves and leaves', async (t) => {
  const { UploadSlots, STARVE_MS } = await import('../lib/scheduling/upload-slots.js');
  const { RequesterChunks } = await import('../lib/scheduling/requester-chunks.js');
  const req = new RequesterChunks();
  const k = (c: number) => UploadSlots.key('cid', c);
  const s = new UploadSlots(1, 60_000, (key) => req.holders('cid', Number(key.split(':')[1])));
  warm(s, 1, 2, 3, 4, 9);
  const bits = (...cs: number[]) => {
    const b = new Uint8Array(2);
    for (const c of cs) b[c >> 3]! |= 1 << (c & 7);
    return b;
  };
  // a partial holder: its requesters 1..4 have chunk 0 (3 of them) and nobody has chunk 5
  req.join(1, 'cid', 16, bits(0));
  req.join(2, 'cid', 16, bits(0));
  req.join(3, 'cid', 16, bits(0, 7));
  req.join(4, 'cid', 16, undefined);
  t.equal(req.holders('cid', 0), 0, 'an interest alone counts for nothing (sybils that never ask)');
  req.had(3, 'cid', [9]); // a have before its first request is kept for when it asks
  for (const s of [1, 2, 3, 4]) req.asked(s, 'cid', 16);
  req.asked(1, 'cid', 16);
  t.equal(req.holders('cid', 9), 1, 'the have from before it asked counts');
  t.same([req.holders('cid', 0), req.holders('cid', 5), req.holders('cid', 7), req.holders('other', 0), req.holders('cid', 99)], [3, 0, 1, 0, 0], 'counts per chunk');
  const sent: string[] = [];
  const want = (session: number, c: number, now: number) => s.want(session, k(c), now, () => sent.push(`${session}:${c}`));
  want(9, 3, 0); // session 9 holds the one slot
  want(4, 0, 1); // waits first: a common chunk (3 of 4 have it)
  want(1, 5, 2); // then: the chunk only we have
  s.acked(9, k(3), 3);
  t.same(sent.at(-1), '1:5', 'the chunk no requester has goes before the one three have, though it asked later');
  s.acked(1, k(5), 4);
  t.same(sent.at(-1), '4:0', 'then the common one');
  // uploaded once and now held by one requester: 5 scores 2, 0 scores 3+1
  req.had(1, 'cid', [5]);
  t.equal(req.holders('cid', 5), 1, 'a have counts');
  req.had(1, 'cid', [5, 99, -1]);
  t.equal(req.holders('cid', 5), 1, 'once, and chunks out of range are ignored');
  want(2, 0, 10);
  want(3, 5, 11);
  s.acked(4, k(0), 12);
  t.same(sent.at(-1), '3:5', 'still the rarer first (uploads + holders: 2 against 4)');
  // no starving: a common chunk that waited STARVE_MS goes before a fresh rare one
  want(4, 9, 13);
  s.acked(3, k(5), 13 + STARVE_MS);
  t.same(sent.at(-1), '2:0', `after ${STARVE_MS} ms of waiting the common chunk goes first`);
  req.leave(1);
  req.leave(2);
  req.leave(3);
  t.same([req.holders('cid', 0), req.holders('cid', 7)], [0, 0], 'leaves take their chunks out');
  req.leave(4);
  req.leave(4);
  req.join(5, 'cid', 16, bits(1));
  req.asked(5, 'cid', 16);
  t.equal(req.holders('cid', 1), 1, 'a content whose last requester left starts over');
  t.equal(req.sessions(), 1);
});

t.test('spread: with several downloaders a seeder shows each a few chunks, the least given out first; all once every chunk went out', async (t) => {
  const { Spread } = await import('../lib/scheduling/spread.js');
  const s = new Spread(12, prng(9), 2);
  const shownOf = (bits: Uint8Array) => [...Array(12).keys()].filter((i) => (bits[i >> 3]! & (1 << (i & 7))) !== 0);
  t.equal(shownOf(s.join(1)).length, 12, 'one downloader alone sees everything');
  const b = shownOf(s.join(2));
  const c = shownOf(s.join(3));
  t.equal(b.length, 2, 'the second sees a window of 2');
  t.equal(c.length, 2);
  t.same(b.filter((i) => c.includes(i)), [], 'and the third another two: distinct chunks first');
  const more = s.had(2, b[0]!);
  t.equal(more.length, 1, 'a peer that has a shown chunk is shown one more');
  t.notOk(b.includes(more[0]!) || c.includes(more[0]!), 'again one nobody was shown');
  t.ok(s.shown(1, 5) && s.shown(2, b[1]!), 'shown() tells what a peer may be sent');
  let finished = new Map<number, number[]>();
  for (let i = 0; i < 12; i++) finished = s.sentTo(1, i);
  t.ok(s.finished, 'every chunk sent once: the spread is over');
  t.ok((finished.get(2)?.length ?? 0) > 0 && (finished.get(3)?.length ?? 0) > 0, 'the rest is shown to everyone at once');
  t.equal(shownOf(s.join(4)).length, 12, 'and a newcomer sees everything');
  s.leave(2);
  s.leave(3);
});

t.test('planner: a peer with no missing chunk is not searched again until it announces one or a chunk goes back to missing', async (t) => {
  const { RequestBook } = await import('../lib/scheduling/request-book.js');
  const { ByteBudget } = await import('../lib/scheduling/budget.js');
  const { PeerStats } = await import('../lib/scheduling/peer-stats.js');
  const { RequestPlanner } = await import('../lib/download/requests.js');
  const N = 64;
  const sent: { peer: number; type: string; from?: number; to?: number }[] = [];
  const table = new ChunkTable(N);
  const budget = new ByteBudget(1 << 30);
  const book = new RequestBook(table, budget, 1 << 20);
  const availability = new Availability(N);
  const looks = new Map<number, number>();
  const has = availability.has.bind(availability);
  availability.has = (peer: number, i: number) => {
    looks.set(peer, (looks.get(peer) ?? 0) + 1);
    return has(peer, i);
  };
  const peers = new Map<number, any>(); // eslint-disable-line @typescript-eslint/no-explicit-any
  const peer = (id: number, chunks: number[]) => {
    const stats = new PeerStats(0);
    stats.rate = 1e9;
    peers.set(id, { id, address: `p${id}`, state: 'active', stats, busyAt: 0, firstRequestAt: 0, nothingAt: null, host: { send: (m: { type: string; from?: number; to?: number }) => sent.push({ peer: id, ...m }) } });
    availability.setPeer(id, bits(N, chunks));
  };
  peer(1, [0, 1, 2, 3]);
  peer(2, []); // nothing yet
  peer(3, [0, 1]); // only what peer 1 is asked for
  const m = { cid: 'c'.repeat(64), size: N << 20, chunkBytes: 1 << 20 } as unknown as import('../lib/manifest.js').Manifest;
  const planner = new RequestPlanner({ m, table, budget, book, availability, peers, random: () => 0.5, resumedChunks: 0, stuckMs: 5_000 });
  planner.pump();
  t.same(new Set(sent.filter((x) => x.type === 'get' && x.peer === 1).flatMap((x) => Array.from({ length: x.to! - x.from! }, (_, k) => x.from! + k))), new Set([0, 1, 2, 3]), 'peer 1 is asked for its four chunks');
  t.notOk(sent.some((x) => x.peer !== 1), 'nobody else');
  const seen2 = looks.get(2) ?? 0;
  const seen3 = looks.get(3) ?? 0;
  t.ok(seen2 > 0 && seen3 > 0, 'peers 2 and 3 were searched once');
  planner.pump();
  planner.pump();
  t.equal(looks.get(2) ?? 0, seen2, 'nothing changed: peer 2 is not searched again');
  t.equal(looks.get(3) ?? 0, seen3, 'nor peer 3');
  sent.length = 0;
  availability.have(2, 40);
  planner.pump();
  t.same(sent.map((x) => [x.peer, x.type, x.from]), [[2, 'get', 40]], 'peer 2 announced chunk 40: searched and asked');
  t.equal(looks.get(3) ?? 0, seen3, 'peer 3 still not searched (its chunks and the missing ones unchanged)');
  sent.length = 0;
  const r = [...book.requestsOf(1)].find((x) => x.pending.has(0))!;
  book.failed(r.id, 0); // chunk 0 goes back to missing
  planner.pump();
  t.ok((looks.get(3) ?? 0) > seen3, 'a chunk went back to missing: peer 3 is searched again');
  t.ok(sent.some((x) => x.type === 'get' && x.from === 0 && (x.peer === 3 || x.peer === 1)), 'and chunk 0 is asked for again');
});

t.test('availability versions: change with every bitfield, have and removal; an id added again never gets an old value; removed peers keep no entry', async (t) => {
  const a = new Availability(16);
  t.equal(a.versionOf(1), 0, 'unknown: 0');
  a.setPeer(1, bits(16, [0]));
  const v1 = a.versionOf(1);
  t.ok(v1 > 0, 'a bitfield gives a version');
  t.equal(a.have(1, 0), false, 'a have for a chunk known already changes nothing...');
  t.equal(a.versionOf(1), v1, '...nor the version');
  a.have(1, 3);
  const v2 = a.versionOf(1);
  t.not(v2, v1, 'a new chunk changes it');
  a.removePeer(1);
  t.equal(a.versionOf(1), 0, 'removed: unknown again');
  a.setPeer(1, bits(16, [0]));
  t.ok(a.versionOf(1) !== v1 && a.versionOf(1) !== v2, 'added again: a value it never had');
  // a server meets many sessions: their entries go with them (hostile review 32: one per session ever)
  for (let id = 100; id < 10_100; id++) {
    a.setPeer(id, bits(16, [1]));
    a.removePeer(id);
  }
  t.equal((a as unknown as { versions: Map<number, number> }).versions.size, 1, 'only the peer still known has an entry');
});
