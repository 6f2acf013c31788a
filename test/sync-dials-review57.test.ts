/**
 * Hostile review 57 of the two-phase round (readers.ts pullAll, dial-plan.ts DialRounds):
 * close() during the drawn phase, a peer that says hello and then nothing, `--once`'s `more`.
 */
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer } from './helpers/sync-peers.js';
import { DIALS_AT_ONCE, DialRounds } from '../lib/sync/dial-plan.js';
import { fakeSyncMembers } from './helpers/fake-sync-member.js';

t.test('close() during the drawn phase: no dial starts after it, and no connection is left open', async (t) => {
  const f = await fakeSyncMembers(t, 40, { helloMs: 200 });
  const a = await peer(t, tempDir(t));
  for (const port of f.ports) a.node.book.add({ ip: '127.0.0.1', port }, 'inbound');
  const round = a.sync.syncOnce(); // no known peer: the 40 are drawn (three waves of 16)
  round.catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  await a.sync.close();
  const atClose = f.accepted();
  await new Promise((r) => setTimeout(r, 1_500));
  t.equal(f.accepted(), atClose, `no dial after close (${f.accepted() - atClose} more; fails now: the round goes on dialling)`);
  t.equal(f.open(), 0, `no connection left open (${f.open()} open; fails now: read after close, watched, never destroyed)`);
});

t.test('16 drawn peers that say hello and then nothing do not hold a round for the index time-out (15 s)', async (t) => {
  const f = await fakeSyncMembers(t, DIALS_AT_ONCE, { silent: true });
  const a = await peer(t, tempDir(t));
  for (const port of f.ports) a.node.book.add({ ip: '127.0.0.1', port }, 'inbound');
  const t0 = Date.now();
  await a.sync.syncOnce();
  const ms = Date.now() - t0;
  t.ok(ms < 8_000, `the round took ${ms} ms (fails now: ~15 s; the 3 s hello wait is passed by saying hello)`);
});

t.test('--once (pure): 100 junk addresses that each hold a dial 15 s are dialled once, not again in later rounds as their backoff runs out', async (t) => {
  const key = (p: string) => p;
  const rounds = new DialRounds<string>(key);
  const listed = Array.from({ length: 100 }, (_, i) => `junk${i}`);
  const dialled = new Map<string, number>();
  let now = 1_000_000;
  let n = 0;
  await rounds.everyPeer(
    async () => {
      n++;
      const { known, drawn } = rounds.plan([], [], listed, () => false, now);
      const peers = [...known, ...drawn];
      // waves of DIALS_AT_ONCE, each failing after 15 s (hello, then no answer to the index)
      for (let i = 0; i < peers.length; i += DIALS_AT_ONCE) {
        now += 15_000;
        for (const p of peers.slice(i, i + DIALS_AT_ONCE)) {
          dialled.set(p, (dialled.get(p) ?? 0) + 1);
          rounds.backoff.failed(p, now);
        }
      }
    },
    () => false,
  );
  const twice = [...dialled.values()].filter((c) => c > 1).length;
  t.equal(dialled.size, 100, 'every address dialled');
  t.equal(twice, 0, `none dialled twice (${twice} were; ${n} rounds, ${(now - 1_000_000) / 1000} s of dials; fails now)`);
});
