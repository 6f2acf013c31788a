/**
 * Sync's lineage of a file (plan.ts `prev`): a local edit remembers the versions it replaced, so
 * that a peer that made a file and stopped before it saw anyone else with it (it agreed on
 * nothing) still tells an edit of the copy another peer fetched from a first contact: both edits
 * survive, one as a conflict copy, on both peers. Also the index's side of it (what `prev` holds,
 * its bound) and index pages bounded in bytes as well as in entries (names reach 4 KiB).
 */
import t from 'tap';
import { readFileSync, utimesSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { SyncIndex } from '../lib/sync/index-store.js';
import { decide, later, isConflictCopy, PREV_KEEP, type SyncEntry } from '../lib/sync/plan.js';
import type { FileInfo } from '../lib/types.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer, stopPeer as stop, converge } from './helpers/sync-peers.js';

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
  // an edit of our version wins whatever the clocks say
  t.same(decide(e(X, 500, { agreed: X }), e(Y, 100, { prev: [X] })), { do: 'fetch', remote: e(Y, 100, { prev: [X] }) }, 'theirs was made from ours: fetch, though older');
  t.same(decide(e(Y, 100, { prev: [X] }), e(X, 500, { agreed: X })), { do: 'nothing' }, 'ours was made from theirs: keep, though older');
  t.same(decide(e(Y, 100, { agreed: X }), e(Z, 50, { agreed: Y })), { do: 'fetch', remote: e(Z, 50, { agreed: Y }) }, 'they fetched our edit and edited it: fetch (not a conflict)');
  // nothing in common, never agreed: first contact, the newer wins as before
  t.same(decide(e(Y, 100, { prev: [X] }), e(Z, 200)), { do: 'fetch', remote: e(Z, 200) }, 'no common version: the newer');
  t.same(decide(e(Y, 300, { prev: [X] }), e(Z, 200)), { do: 'nothing' }, 'either way');
  t.equal(later(e(Y, 100, { prev: [X] }), e(X, 500)), 'a', 'merging members: an edit of another member\'s version wins');
  t.equal(later(e(X, 500), e(Y, 100, { prev: [X] })), 'b', 'either way round');
  t.equal(later(e(Y, 100), e(Z, 500)), 'b', 'else the newer');
});

t.test('the index keeps a bounded lineage of local edits', async (t) => {
  const idx = new SyncIndex(tempDir(t));
  idx.followSome([file('a', C(1))], []);
  t.equal(idx.get('a')!.prev, undefined, 'a new file has none');
  idx.followSome([file('a', C(1), 11)], []);
  t.equal(idx.get('a')!.prev, undefined, 'a touch (same content) adds nothing');
  for (let i = 2; i <= 8; i++) idx.followSome([file('a', C(i))], []);
  t.same(idx.get('a')!.prev, [C(7), C(6), C(5), C(4)].slice(0, PREV_KEEP), `newest first, at most ${PREV_KEEP}`);
  idx.followSome([file('a', C(6))], []);
  t.same(idx.get('a')!.prev, [C(8), C(7), C(5), C(4)], 'a revert: the current version is not its own ancestor');
  idx.fetched('a', C(9), 20, 1, [C(9), C(8), C(1), C(2), C(3), C(4)]);
  t.same(idx.get('a')!.prev, [C(8), C(1), C(2), C(3)], 'fetched: the holder\'s lineage, bounded');
  t.equal(idx.get('a')!.agreed, C(9));
  idx.fetched('b', C(10), 20, 1);
  t.equal(idx.get('b')!.prev, undefined, 'fetched without one: none');
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
