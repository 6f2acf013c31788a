import t from 'tap';
import { ChunkTable, ChunkState } from '../lib/scheduling/chunk-table.js';
import { pickRange } from '../lib/scheduling/picker.js';
import { ByteBudget } from '../lib/scheduling/budget.js';
import { PeerStats, START_PIPELINE_CHUNKS, MAX_PIPELINE_CHUNKS, MIN_PIPELINE_CHUNKS } from '../lib/scheduling/peer-stats.js';
import { TokenBucket } from '../lib/scheduling/token-bucket.js';

t.test('chunk table: missing → assigned → received → verified, and back on failure', async (t) => {
  const tab = new ChunkTable(10, (i) => i === 0 || i === 5);
  t.equal(tab.verified, 2);
  t.same(tab.nextMissingRun(100), { start: 1, end: 5 }, 'a run stops at a verified chunk');
  tab.assign(1, 5);
  t.same(tab.nextMissingRun(3), { start: 6, end: 9 });
  tab.received(2);
  t.equal(tab.stateOf(2), ChunkState.Received);
  tab.release(2);
  t.equal(tab.stateOf(2), ChunkState.Missing, 'released chunk is missing again');
  t.same(tab.nextMissingRun(1), { start: 2, end: 3 }, 'and is picked first');
  t.ok(tab.verify(1));
  t.notOk(tab.verify(1), 'verifying twice counts once');
  t.equal(tab.verified, 3);
  for (let i = 0; i < 10; i++) tab.verify(i);
  t.ok(tab.complete);
  t.equal(tab.nextMissingRun(5), null);
});

t.test('chunk table: an endgame duplicate keeps the chunk assigned until both give up', async (t) => {
  const tab = new ChunkTable(3);
  tab.assign(0, 3);
  t.same([...tab.assignedSingly()], [0, 1, 2]);
  tab.assign(2, 3); // second peer takes chunk 2
  t.equal(tab.ownersOf(2), 2);
  t.same([...tab.assignedSingly()], [0, 1]);
  tab.release(2);
  t.equal(tab.stateOf(2), ChunkState.Assigned, 'still held by the other peer');
  tab.release(2);
  t.equal(tab.stateOf(2), ChunkState.Missing);
});

t.test('chunk table: the endgame candidates are the chunks in flight, whatever the table size', async (t) => {
  const n = 65_536;
  const tab = new ChunkTable(n);
  // everything verified but a straggler at the low end and a few at the top, some in flight
  tab.assign(0, n);
  for (let i = 0; i < n; i++) if (i !== 3 && i < n - 4) tab.verify(i);
  t.same([...tab.assignedToFewer(2)], [3, n - 4, n - 3, n - 2, n - 1], 'the stragglers, lowest first');
  tab.received(n - 3);
  t.same([...tab.assignedToFewer(2)], [3, n - 4, n - 2, n - 1], 'one whose bytes arrived is not a candidate');
  tab.assign(n - 2, n - 1);
  t.same([...tab.assignedToFewer(2)], [3, n - 4, n - 1], 'one with two holders is not, below 2');
  t.same([...tab.assignedToFewer(3)], [3, n - 4, n - 2, n - 1], 'and is, below 3');
  tab.release(3);
  t.same([...tab.assignedToFewer(2)], [n - 4, n - 1], 'one given back is missing, not in flight');
  tab.verify(n - 4);
  t.same([...tab.assignedToFewer(2)], [n - 1], 'one verified is gone');
});

t.test('picker: contiguous runs, room and run limits, endgame to the chunk delivered last', async (t) => {
  const tab = new ChunkTable(20);
  const base = { table: tab, ownChunkSeconds: 0.01, holderEta: () => 0.05, idle: false };
  t.same(pickRange({ ...base, room: 8, maxRun: 5 }), { start: 0, end: 5, duplicate: false });
  t.equal(pickRange({ ...base, room: 0, maxRun: 5 }), null);
  tab.assign(0, 20);
  t.equal(pickRange({ ...base, room: 4, maxRun: 4 }), null, 'busy peers get no duplicates');
  // chunk 13 sits at the back of a slow peer's queue
  const eta = (i: number) => (i === 13 ? 2 : 0.05);
  t.same(pickRange({ ...base, idle: true, room: 4, maxRun: 4, holderEta: eta }), { start: 13, end: 14, duplicate: true }, 'the latest chunk moves');
  t.equal(pickRange({ ...base, idle: true, room: 4, maxRun: 4, ownChunkSeconds: 5, holderEta: eta }), null, 'not if this peer would be slower');
  t.equal(pickRange({ ...base, idle: true, room: 4, maxRun: 4, holderEta: () => 0.012 }), null, 'not for a saving below the margin');
  tab.assign(13, 14);
  t.not(pickRange({ ...base, idle: true, room: 4, maxRun: 4, holderEta: eta })?.start, 13, 'never a third holder');
});

t.test('budget bounds bytes in flight; the first take always fits', async (t) => {
  const b = new ByteBudget(10);
  t.ok(b.tryTake(25), 'first reservation fits even when larger than the budget');
  t.notOk(b.tryTake(1));
  b.give(25);
  t.ok(b.tryTake(6));
  t.ok(b.tryTake(4));
  t.notOk(b.tryTake(1));
  t.equal(b.free, 0);
  b.give(6);
  t.equal(b.inFlight, 4);
});

t.test('peer stats: rate of verified bytes, pipeline depth follows rate, strikes, stalls', async (t) => {
  const s = new PeerStats(0);
  t.equal(s.pipelineChunks(1 << 20), START_PIPELINE_CHUNKS);
  s.onBytes(500 << 20, 400); // received, not verified: no rate from that
  t.equal(s.rate, 0, 'bytes that did not pass a hash do not count as rate');
  s.onVerified(50 << 20, 500); // 100 MiB/s over the first window
  t.equal(Math.round(s.rate / (1 << 20)), 100);
  t.equal(s.pipelineChunks(1 << 20), Math.min(MAX_PIPELINE_CHUNKS, 100));
  t.equal(s.chunksVerified, 1);
  const slow = new PeerStats(0);
  slow.onBytes(1000, 1000);
  t.equal(slow.pipelineChunks(1 << 20), MIN_PIPELINE_CHUNKS);
  t.equal(slow.stalledFor(5000), 4000);
  t.notOk(slow.strike());
  t.notOk(slow.strike());
  t.ok(slow.strike(), 'third strike drops');
});

t.test('token bucket: one second of burst, then the rate', async (t) => {
  const b = new TokenBucket(1000, 0);
  t.equal(b.delayFor(1000, 0), 0);
  t.equal(b.delayFor(500, 0), 500);
  t.equal(b.delayFor(500, 500), 500, 'still in debt after half a second');
  t.equal(b.delayFor(0, 2000), 0);
});
