/**
 * Decisions of three or more members merged (syncer.ts plan()): found by a randomized model checker
 * (helper 43, test/sync-model.test.ts). A deletion on one of three peers must reach the other two whatever
 * order they first read their members in; a copy of a losing edit never replaces an earlier copy.
 */
import t from 'tap';
import { existsSync, readFileSync, readdirSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { decide, mergeRemote, type SyncEntry } from '../lib/sync/plan.js';
import { SyncIndex } from '../lib/sync/index-store.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer, stopPeer as stop, connect, converge } from './helpers/sync-peers.js';

const C = (n: number) => n.toString(16).padStart(64, '0');
const e = (cid: string, mtime: number, extra: Partial<SyncEntry> = {}): SyncEntry => ({ name: 'f', cid, mtime, size: 1, ...extra });

t.test('mergeRemote: a deletion is not hidden by a live copy of the version deleted, whatever the order', async (t) => {
  const [X, Y, Z] = [C(1), C(2), C(3)];
  const ours = e(X, 100, { agreed: X });
  const tomb = e(X, 100, { deleted: 200, agreed: X });
  for (const order of [[ours, tomb], [tomb, ours]]) {
    t.same(mergeRemote(ours, order), tomb, 'our version was deleted by a member: its deletion');
    t.match(decide(ours, mergeRemote(ours, order)!), { do: 'delete' });
  }
  // a member's update of X beside the deletion: fetched at once under --no-delete (the deletion is not ours to follow)
  const upd = e(Z, 300, { agreed: X, prev: [X] });
  t.same(mergeRemote(ours, [ours, tomb, upd]), tomb, 'the deletion first (then the update: it outlives it)');
  t.same(mergeRemote(ours, [ours, tomb, upd], { noDelete: true }), upd, '--no-delete: the update');
  // p3's clock ahead made X; p2 edited it to Y (slow clock: older than X); p0 deleted X
  const x = e(X, 1052, { agreed: X });
  const y = e(Y, 1003, { agreed: X, prev: [X] });
  const del = e(X, 1052, { deleted: 1004, agreed: X });
  t.same(mergeRemote(x, [del, y, x]), del, 'p1 (X): X was deleted, it goes first');
  t.same(mergeRemote(e(X, 1052, { deleted: 1010, agreed: X }), [del, y, x]), y, 'then the edit of it that outlives the deletion, not X');
  t.same(mergeRemote(del, [x, y, x]), y, 'p0 (deleted X): the edit, not X');
  t.same(mergeRemote(y, [del, x, x]), del, 'p2 (Y): the latest deletion (Y outlives it: decide keeps Y)');
  t.same(decide(y, del), { do: 'nothing' });
  t.same(mergeRemote(undefined, [e(Z, 50), del]), del, 'an unrelated older version does not outlive the deletion');
});

t.test('a fetched version keeps its holder\'s whole lineage (what it agreed on too)', async (t) => {
  const [X, Y] = [C(1), C(2)];
  const idx = new SyncIndex(tempDir(t));
  // the holder re-made the file after it learnt of X's deletion (agreed X): an edit of X, which outlives X's deletion
  const holder = e(Y, 50, { agreed: X });
  const tomb = e(X, 10, { deleted: 100, agreed: X });
  t.same(decide(holder, tomb), { do: 'nothing' }, 'on the holder: kept');
  idx.fetched('f', Y, 50, 1, [holder.agreed!, ...(holder.prev ?? [])]);
  t.same(decide(idx.get('f')!, tomb), { do: 'nothing' }, 'fetched elsewhere: kept there too (else deleted there and fetched again, for ever)');
  // a lineage naming one version twice (what it agreed on, then edited) keeps each once: the oldest is not dropped for a repeat
  const [V3, V4, V5, V2, V1] = [C(13), C(14), C(15), C(12), C(11)];
  idx.fetched('g', V5, 8, 1, [V3, V4, V3, V2, V1]);
  t.same(idx.get('g')!.prev, [V3, V4, V2, V1], 'each version once, the oldest kept');
});

t.test('three peers: a deletion on one reaches the other two (each read a peer with the file before the deleter)', async (t) => {
  const ds = [tempDir(t), tempDir(t), tempDir(t)];
  writeFileSync(path.join(ds[0]!, 'doomed.txt'), 'X\n');
  utimesSync(path.join(ds[0]!, 'doomed.txt'), 1_500_000_000, 1_500_000_000);
  const ps = await Promise.all(ds.map((d) => peer(t, d)));
  // p0 and p1 first know each other only; p2 joins later (so p0 and p1 each read the other first)
  connect([ps[0]!, ps[1]!]);
  await converge([ps[0]!, ps[1]!], 2);
  connect(ps);
  await converge(ps, 2);
  for (const d of ds) t.ok(existsSync(path.join(d, 'doomed.txt')), 'every peer has it');
  unlinkSync(path.join(ds[2]!, 'doomed.txt'));
  await converge(ps, 4);
  for (const [i, d] of ds.entries()) t.notOk(existsSync(path.join(d, 'doomed.txt')), `deleted on p${i}`);
});

/** Every file in `d` but the state folder, as name -> content. */
function contents(d: string): Map<string, string> {
  return new Map(readdirSync(d).filter((n) => n !== '.swarm').map((n) => [n, readFileSync(path.join(d, n), 'utf8')]));
}

t.test('a conflict copy never replaces an earlier one of the same name (two losing versions with one mtime)', async (t) => {
  // which of two contents wins a tie of mtimes (the larger content id): learnt from a scratch peer
  const scratch = tempDir(t);
  writeFileSync(path.join(scratch, 'a'), 'B\n');
  writeFileSync(path.join(scratch, 'b'), 'C\n');
  const s = await peer(t, scratch);
  const [lo, hi] = s.node.library.stat('a')!.cid < s.node.library.stat('b')!.cid ? ['B\n', 'C\n'] : ['C\n', 'B\n'];
  await stop(s);
  const ds = [tempDir(t), tempDir(t), tempDir(t)];
  const put = (d: string, text: string, m: number) => {
    writeFileSync(path.join(d, 'notes.txt'), text);
    utimesSync(path.join(d, 'notes.txt'), m, m);
  };
  const M = 1_500_000_000;
  put(ds[0]!, 'X\n', M - 100);
  let ps = await Promise.all(ds.map((d) => peer(t, d)));
  connect(ps);
  await converge(ps, 2);
  for (const p of ps) await stop(p);
  // apart, all three edit X: p0 and p1 in the same second (p1's wins the tie), p2 two seconds later
  put(ds[0]!, lo, M);
  put(ds[1]!, hi, M);
  put(ds[2]!, 'D\n', M + 2);
  // p0 meets p1 alone: its version lost, kept as NAME.sync-conflict-(M)-(p0), and p1's (mtime M) taken
  const p0 = await peer(t, ds[0]!);
  const p1 = await peer(t, ds[1]!);
  p0.node.book.add({ ip: '127.0.0.1', port: p1.node.port }, 'neighbor');
  await p0.sync.syncOnce();
  await stop(p0);
  await stop(p1);
  t.equal(readFileSync(path.join(ds[0]!, 'notes.txt'), 'utf8'), hi, 'p0 took the winner of the tie');
  // all three: p1's version (mtime M, on p0 too) loses to p2's: p0's copy of it must not replace the first copy
  ps = await Promise.all(ds.map((d) => peer(t, d)));
  connect(ps);
  await converge(ps, 5);
  const all = ds.map(contents);
  for (const [i, c] of all.entries()) {
    t.same([...new Set(c.values())].sort(), ['B\n', 'C\n', 'D\n'], `p${i} has every version (${[...c.keys()].join(', ')})`);
    t.equal(c.get('notes.txt'), 'D\n', `p${i}: the newest under the name`);
  }
});
