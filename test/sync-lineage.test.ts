/**
 * Sync's lineage of a file (plan.ts `prev`): a local edit remembers the versions it replaced, so
 * that a peer that made a file and stopped before it saw anyone else with it (it agreed on
 * nothing) still tells an edit of the copy another peer fetched from a first contact: both edits
 * survive, one as a conflict copy, on both peers. Also the index's side of it (what `prev` holds,
 * its bound) and index pages bounded in bytes as well as in entries (names reach 4 KiB).
 */
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SyncIndex } from '../lib/sync/index-store.js';
import { decide, isConflictCopy, PREV_KEEP, type SyncEntry } from '../lib/sync/plan.js';
import type { FileInfo } from '../lib/types.js';
import { checkEntry } from '../lib/sync/check-entry.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer, stopPeer as stop, connect, converge } from './helpers/sync-peers.js';

const C = (n: number) => n.toString(16).padStart(64, '0');
const e = (cid: string, mtime: number, extra: Partial<SyncEntry> = {}): SyncEntry => ({ name: 'f', cid, mtime, size: 1, ...extra });
const file = (name: string, cid: string, mtime = 10): FileInfo => ({ name, cid, mtime, size: 1, kind: 'other' });

t.test('decisions with a lineage', async (t) => {
  const [X, Y, Z] = [C(1), C(2), C(3)];
  // a made X and edited it to Y without ever agreeing; b fetched X (agreed X) and edited it to Z
  const a = e(Y, 100, { prev: [X] });
  const b = e(Z, 200, { agreed: X, prev: [X] });
  t.match(decide(a, b), { do: 'conflict', ours: 'loses' }, 'on a: both edited X, b newer: a keeps its edit as a copy');
  t.match(decide(b, a), { do: 'conflict', ours: 'wins' }, 'on b: the same decision');
  t.match(decide(e(Y, 300, { prev: [X] }), b), { do: 'conflict', ours: 'wins' }, 'a newer: a wins');
  t.match(decide(b, e(Y, 300, { prev: [X] })), { do: 'conflict', ours: 'loses' }, 'and b agrees');
  // the newer wins on every peer; an update of the loser replaces it, an edit of the winner is kept
  t.same(decide(e(X, 100, { agreed: X }), e(Y, 200, { prev: [X] })), { do: 'fetch', remote: e(Y, 200, { prev: [X] }) }, 'theirs was made from ours: an update');
  t.match(decide(e(X, 500, { agreed: X }), e(Y, 100, { prev: [X] })), { do: 'conflict', ours: 'wins' }, 'theirs was made from ours on a slow clock: ours wins, theirs kept as a copy');
  t.match(decide(e(Y, 100, { prev: [X] }), e(X, 500, { agreed: X })), { do: 'conflict', ours: 'loses' }, 'and on their side the same');
  // nothing in common, never agreed: first contact, the newer wins, no copy
  t.same(decide(e(Y, 100, { prev: [X] }), e(Z, 200)), { do: 'fetch', remote: e(Z, 200) }, 'no common version: the newer');
  t.same(decide(e(Y, 300, { prev: [X] }), e(Z, 200)), { do: 'nothing' }, 'either way');
  // deletions: an edit of the deleted version outlives it whatever the clocks say; an older version does not
  const tomb = e(X, 100, { deleted: 500, agreed: X, prev: [Z] });
  t.same(decide(e(Y, 200, { agreed: X, prev: [X] }), tomb), { do: 'nothing' }, 'an edit of the deleted version stays...');
  t.same(decide(tomb, e(Y, 200, { agreed: X, prev: [X] })), { do: 'fetch', remote: e(Y, 200, { agreed: X, prev: [X] }) }, '...and the deleting side takes it back (they agree)');
  t.match(decide(e(Z, 50, { agreed: Z }), tomb), { do: 'delete' }, 'a version the deleted one was made from is deleted');
  t.same(decide(tomb, e(Z, 50, { agreed: Z })), { do: 'nothing' }, 'and not taken back');
  t.match(decide(e(Y, 400), tomb), { do: 'delete' }, 'an unrelated version older than the deletion is deleted');
  t.same(decide(e(Y, 600), tomb), { do: 'nothing' }, 'a newer one stays');
});

t.test('a revert (X -> Y -> X) spreads without a copy', async (t) => {
  const [X, Y] = [C(1), C(2)];
  // a had Y (agreed, made from X) and reverted to X; b fetched Y from a
  const a = e(X, 300, { agreed: Y, prev: [Y] });
  const b = e(Y, 200, { agreed: Y, prev: [X] });
  t.same(decide(a, b), { do: 'nothing' }, 'on a: keep the revert');
  t.same(decide(b, a), { do: 'fetch', remote: a }, 'on b: take the revert, no copy (it was made from ours)');
});

t.test('decide: for every pair, one side keeps and the other takes, alike on both', async (t) => {
  const cids = [C(1), C(2), C(3)];
  const all: SyncEntry[] = [];
  for (const cid of cids) {
    const others = cids.filter((c) => c !== cid);
    const prevs: (string[] | undefined)[] = [undefined, [others[0]!], [others[1]!], [others[0]!, others[1]!], [others[1]!, others[0]!]];
    for (const agreed of [undefined, ...cids]) {
      for (const prev of prevs) {
        for (const mtime of [1, 2]) {
          all.push(e(cid, mtime, { ...(agreed ? { agreed } : {}), ...(prev ? { prev } : {}) }));
          all.push(e(cid, mtime, { deleted: mtime === 1 ? 2 : 3, ...(agreed ? { agreed } : {}), ...(prev ? { prev } : {}) }));
        }
      }
    }
  }
  const take = (d: ReturnType<typeof decide>) => d.do === 'fetch' || (d.do === 'conflict' && d.ours === 'loses');
  let bad = 0;
  let pairs = 0;
  for (const l of all) {
    for (const r of all) {
      if (l.cid === r.cid || (l.deleted !== undefined && r.deleted !== undefined)) continue;
      pairs++;
      const [x, y] = [decide(l, r), decide(r, l)];
      let ok: boolean;
      if (l.deleted === undefined && r.deleted === undefined) ok = take(x) !== take(y) && (x.do === 'conflict') === (y.do === 'conflict');
      else {
        // a live version against a deletion: deleted on the live side exactly when not taken back on the other
        const [live, dead] = l.deleted === undefined ? [x, y] : [y, x];
        ok = (live.do === 'delete') === (dead.do === 'nothing') && (live.do === 'nothing') === (dead.do === 'fetch');
      }
      if (!ok && bad++ < 3) t.fail(`${JSON.stringify(l)} / ${JSON.stringify(r)}: ${x.do} / ${y.do}`);
    }
  }
  t.equal(bad, 0, `${pairs} pairs`);
});

t.test('the index keeps a bounded lineage of local edits', async (t) => {
  const idx = new SyncIndex(tempDir(t));
  idx.followSome([file('a', C(1))], []);
  t.equal(idx.get('a')!.prev, undefined, 'a new file has none');
  idx.followSome([file('a', C(1), 11)], []);
  t.equal(idx.get('a')!.prev, undefined, 'a touch (same content) adds nothing');
  const last = PREV_KEEP + 4;
  for (let i = 2; i <= last; i++) idx.followSome([file('a', C(i))], []);
  const before = (from: number, n: number) => Array.from({ length: n }, (_, k) => C(from - k)); // C(from), C(from-1), ...
  t.same(idx.get('a')!.prev, before(last - 1, PREV_KEEP), `newest first, at most ${PREV_KEEP}`);
  idx.followSome([file('a', C(last - 2))], []);
  t.same(idx.get('a')!.prev, [C(last), C(last - 1), ...before(last - 3, PREV_KEEP - 2)], 'a revert: the current version is not its own ancestor');
  const holder = [C(100), ...before(99, PREV_KEEP + 3)];
  idx.fetched('a', C(100), 20, 1, holder);
  t.same(idx.get('a')!.prev, holder.slice(1, PREV_KEEP + 1), "fetched: the holder's lineage, bounded");
  t.equal(idx.get('a')!.agreed, C(100));
  idx.fetched('b', C(200), 20, 1);
  t.equal(idx.get('b')!.prev, undefined, 'fetched without one: none');
});

t.test('the maker edited six times before it saw the copy another fetched; that one edited too: a conflict, both kept', async (t) => {
  // hostile review 43's rest: with 4 versions kept, the version both started from fell out of
  // the maker's lineage after its fifth edit, and the two edits met as a first contact (the
  // older went to the trash, no copy)
  const maker = new SyncIndex(tempDir(t));
  const other = new SyncIndex(tempDir(t));
  maker.followSome([file('f', C(1), 10)], []);
  const made = maker.get('f')!;
  other.fetched('f', made.cid, made.mtime, 1, made.prev);
  for (let i = 2; i <= 7; i++) maker.followSome([file('f', C(i), 10 + i)], []);
  other.followSome([file('f', C(50), 30)], []);
  const [m, o] = [maker.get('f')!, other.get('f')!];
  t.ok(m.prev?.includes(C(1)), 'the maker still knows where its line began');
  t.match(decide(m, o), { do: 'conflict', ours: 'loses' }, "on the maker: both edited one version, the other's is newer: ours is kept as a copy");
  t.match(decide(o, m), { do: 'conflict', ours: 'wins' }, 'on the other: the same decision');
});

t.test("a peer's longer lineage is cut to ours, not refused (a later build may keep more); anything but content ids is", async (t) => {
  const entry = (prev: unknown) => ({ name: 'f', cid: C(1), mtime: 10, size: 1, prev });
  const ids = (n: number) => Array.from({ length: n }, (_, i) => C(100 + i));
  t.same(checkEntry(entry(ids(3)))?.prev, ids(3), 'a short one as it is');
  t.same(checkEntry(entry(ids(PREV_KEEP + 5)))?.prev, ids(PREV_KEEP), `cut to the newest ${PREV_KEEP}`);
  t.equal(checkEntry(entry(ids(65))), null, 'more than 64: left out');
  t.equal(checkEntry(entry([...ids(9), 'not a content id'])), null, 'anything but content ids: left out');
  t.equal(checkEntry(entry('x')), null, 'not a list: left out');
  t.equal(checkEntry(entry([]))?.prev, undefined, 'an empty one: none');
});

t.test('index pages stay small enough for a frame whatever the names', async (t) => {
  const idx = new SyncIndex(tempDir(t));
  const long = (i: number) => `${String(i).padStart(5, '0')}/${'n'.repeat(4000)}`;
  idx.followSome(Array.from({ length: 1500 }, (_, i) => file(long(i), C(i + 1))), []);
  let after: string | undefined;
  let seen = 0;
  let pages = 0;
  for (; pages < 100; pages++) {
    const p = idx.page(after);
    const bytes = Buffer.byteLength(JSON.stringify(p.entries));
    t.ok(bytes < 512 << 10, `page ${pages}: ${p.entries.length} entries, ${bytes} bytes`);
    seen += p.entries.length;
    if (p.next === undefined) break;
    after = p.next;
  }
  t.equal(seen, 1500, `every entry once, in ${pages + 1} pages`);
  const short = new SyncIndex(tempDir(t));
  short.followSome(Array.from({ length: 1500 }, (_, i) => file(`f${i}`, C(i + 1))), []);
  t.equal(short.page(undefined).entries.length, 1000, 'short names: 1,000 entries a page, as before');
});

for (const newer of ['maker', 'fetcher'] as const) {
  t.test(`the maker stopped before it saw the copy; both edit; ${newer}'s edit is newer: both kept`, async (t) => {
    const [da, db] = [tempDir(t), tempDir(t)];
    writeFileSync(path.join(da, 'notes.txt'), 'made on a\n');
    utimesSync(path.join(da, 'notes.txt'), 1_400_000_000, 1_400_000_000);
    let a = await peer(t, da);
    let b = await peer(t, db);
    b.node.book.add({ ip: '127.0.0.1', port: a.node.port }, 'neighbor'); // only b reads a
    // ... and a must not read b back: a syncing peer that is watched reads every peer 50 ms later
    // (readers.ts watchedBy), and whether b had its copy by then was timing (a loaded CI machine
    // saw it, and a agreed). Here a stops first, as a user's laptop closed at that moment would.
    (a.sync as any).readers.watchedBy = () => {};
    await b.sync.syncOnce();
    t.equal(readFileSync(path.join(db, 'notes.txt'), 'utf8'), 'made on a\n', 'b fetched it');
    t.equal(b.sync.index.get('notes.txt')?.agreed, b.sync.index.get('notes.txt')?.cid, 'b agreed on it');
    await stop(a);
    t.equal(a.sync.index.get('notes.txt')?.agreed, undefined, 'a stopped before it saw b with it (agreed on nothing)');
    await stop(b);
    writeFileSync(path.join(da, 'notes.txt'), 'edited on a\n');
    utimesSync(path.join(da, 'notes.txt'), newer === 'maker' ? 1_600_000_000 : 1_500_000_000, newer === 'maker' ? 1_600_000_000 : 1_500_000_000);
    writeFileSync(path.join(db, 'notes.txt'), 'edited on b\n');
    utimesSync(path.join(db, 'notes.txt'), newer === 'maker' ? 1_500_000_000 : 1_600_000_000, newer === 'maker' ? 1_500_000_000 : 1_600_000_000);
    a = await peer(t, da);
    b = await peer(t, db);
    for (const [p, q] of [[a, b], [b, a]] as const) p.node.book.add({ ip: '127.0.0.1', port: q.node.port }, 'neighbor');
    await converge([a, b], 4);
    const names = (d: string) => readdirSync(d).filter((n) => n !== '.swarm').sort();
    t.same(names(da), names(db), 'the same names on both');
    const copies = names(da).filter(isConflictCopy);
    t.equal(copies.length, 1, 'one conflict copy');
    const winner = newer === 'maker' ? 'edited on a\n' : 'edited on b\n';
    const loser = newer === 'maker' ? 'edited on b\n' : 'edited on a\n';
    for (const d of [da, db]) {
      t.equal(readFileSync(path.join(d, 'notes.txt'), 'utf8'), winner, 'the newer edit under the name');
      t.equal(readFileSync(path.join(d, copies[0]!), 'utf8'), loser, 'the other edit kept beside it');
    }
  });
}

t.test('a peer reverts its edit (X -> Y -> X): the revert stays and spreads', async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  const f = (d: string) => path.join(d, 'notes.txt');
  const put = (s: string, m: number) => {
    writeFileSync(f(da), s);
    utimesSync(f(da), m, m);
  };
  put('X\n', 1_400_000_000);
  const a = await peer(t, da);
  const b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 2);
  put('Y\n', 1_500_000_000);
  await converge([a, b], 2);
  t.equal(readFileSync(f(db), 'utf8'), 'Y\n', 'b took the edit');
  put('X\n', 1_600_000_000); // undone (an editor's undo, git checkout, a backup)
  await converge([a, b], 3);
  t.equal(readFileSync(f(da), 'utf8'), 'X\n', 'a keeps its revert');
  t.equal(readFileSync(f(db), 'utf8'), 'X\n', 'b took it');
  t.same(readdirSync(db).filter(isConflictCopy), [], 'no conflict copy');
});

/** Every file in `d` but the state folder, as name -> content. */
function contents(d: string): Map<string, string> {
  return new Map(readdirSync(d).filter((n) => n !== '.swarm').map((n) => [n, readFileSync(path.join(d, n), 'utf8')]));
}

t.test('three peers with edits on clocks out of order: all converge, no edit lost (hostile review 41)', async (t) => {
  const ds = [tempDir(t), tempDir(t), tempDir(t)];
  const f = (d: string) => path.join(d, 'notes.txt');
  const put = (d: string, s: string, m: number) => {
    writeFileSync(f(d), s);
    utimesSync(f(d), m, m);
  };
  const T = 1_500_000_000;
  put(ds[1]!, 'X\n', T);
  let ps = await Promise.all(ds.map((d) => peer(t, d)));
  connect(ps);
  await converge(ps, 3);
  for (const p of ps) await stop(p);
  // p2 edits X -> B (newest clock); p1 alone reads p2 and fetches B; both stop
  put(ds[1]!, 'B\n', T + 300);
  let p1 = await peer(t, ds[0]!);
  const p2 = await peer(t, ds[1]!);
  p1.node.book.add({ ip: '127.0.0.1', port: p2.node.port }, 'neighbor');
  await p1.sync.syncOnce();
  await stop(p1);
  await stop(p2);
  t.equal(readFileSync(f(ds[0]!), 'utf8'), 'B\n', 'p1 took B');
  // apart: p1 edits B -> A on a clock behind; p3 edits X -> C
  put(ds[0]!, 'A\n', T + 100);
  put(ds[2]!, 'C\n', T + 200);
  ps = await Promise.all(ds.map((d) => peer(t, d)));
  connect(ps);
  await converge(ps, 5);
  const all = ds.map(contents);
  for (let i = 1; i < 3; i++) t.same(all[i], all[0], `p${i + 1} has what p1 has`);
  t.equal(all[0]!.get('notes.txt'), 'B\n', 'the newest under the name');
  const kept = [...all[0]!.values()].sort();
  t.same(kept, ['A\n', 'B\n', 'C\n'], 'every edit kept (A and C as conflict copies)');
  t.equal([...all[0]!.keys()].filter(isConflictCopy).length, 2);
});

t.test('an edit made while another peer deleted the file (noticed later) comes back there (newcomer 42)', async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  writeFileSync(path.join(da, 'new2.txt'), 'one\n');
  utimesSync(path.join(da, 'new2.txt'), 1_500_000_000, 1_500_000_000);
  let a = await peer(t, da);
  let b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 3);
  await stop(a);
  await stop(b);
  unlinkSync(path.join(db, 'new2.txt')); // deleted on b while its sync is stopped: noticed (dated) at restart
  writeFileSync(path.join(da, 'new2.txt'), 'two\n');
  utimesSync(path.join(da, 'new2.txt'), 1_600_000_000, 1_600_000_000); // an edit, older than the restart
  a = await peer(t, da);
  b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 4);
  t.equal(readFileSync(path.join(da, 'new2.txt'), 'utf8'), 'two\n', 'the edit stays on a');
  t.equal(existsSync(path.join(db, 'new2.txt')) && readFileSync(path.join(db, 'new2.txt'), 'utf8'), 'two\n', 'and comes back on b: both agree');
});

t.test('two files trashed in one second under names that flatten alike are both kept (newcomer 42)', async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  mkdirSync(path.join(da, 'sub'));
  writeFileSync(path.join(da, 'sub', 'c.txt'), 'in the folder\n');
  writeFileSync(path.join(da, 'sub__c.txt'), 'beside it\n');
  const a = await peer(t, da);
  const b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 3);
  unlinkSync(path.join(da, 'sub', 'c.txt'));
  unlinkSync(path.join(da, 'sub__c.txt'));
  await converge([a, b], 3);
  t.notOk(existsSync(path.join(db, 'sub__c.txt')), 'deleted on b');
  const trash = path.join(db, '.swarm', 'trash');
  const kept = readdirSync(trash).map((n) => readFileSync(path.join(trash, n), 'utf8')).sort();
  t.same(kept, ['beside it\n', 'in the folder\n'], 'both in b\'s trash, neither replaced the other');
});
