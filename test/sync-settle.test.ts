/**
 * A file written slowly into a synced folder (appended every 400 ms: a download, a log) is not
 * announced at every step (newcomer review 42: every step that held still for 0.3 s was fetched by
 * each receiver and its previous version trashed, 6 versions for a file written over 6 s): each
 * time it changes again soon after an announcement, the stillness it must show doubles. A single
 * edit is still announced after STABLE_MS; a file deleted here is said once. LocalFollower over a
 * stand-in library and a real file.
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import { appendFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SyncIndex } from '../lib/sync/index-store.js';
import { LocalFollower, STABLE_MS } from '../lib/sync/local.js';
import type { FileInfo } from '../lib/types.js';
import type { Library } from '../lib/share/library.js';
import { tempDir } from './helpers/tmp.js';

const C = (n: number) => n.toString(16).padStart(64, '0');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a file appended every 400 ms is announced a few times, not at every step; a lone edit at once', async (t) => {
  const dir = tempDir(t);
  const idx = new SyncIndex(dir);
  const file = path.join(dir, 'log.txt');
  let info: FileInfo | undefined;
  let st: { size: number; mtimeMs: number; dev: number; ino: number } | undefined;
  const lib = Object.assign(new EventEmitter(), { root: dir, files: () => [], stat: () => info, statOf: () => st });
  const follower = new LocalFollower(lib as unknown as Library, idx);
  follower.start();
  t.teardown(() => follower.close());
  const announced: string[] = [];
  idx.onChange(() => {
    const e = idx.get('log.txt');
    if (e && announced[announced.length - 1] !== e.cid) announced.push(e.cid);
  });
  let n = 0;
  const write = () => {
    appendFileSync(file, `line ${n}\n`);
    const s = statSync(file);
    st = { size: s.size, mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino };
    info = { name: 'log.txt', cid: C(++n), mtime: Math.floor(s.mtimeMs / 1000), size: s.size, kind: 'other' };
    lib.emit('change', { added: n === 1 ? ['log.txt'] : [], changed: n === 1 ? [] : ['log.txt'], removed: [] });
  };
  for (let i = 0; i < 8; i++) {
    write();
    await sleep(400);
  }
  const last = C(n);
  for (let i = 0; i < 100 && announced[announced.length - 1] !== last; i++) await sleep(50);
  t.equal(announced[announced.length - 1], last, 'the last version is announced once the writes stop');
  t.ok(announced.length <= 3, `${announced.length} of ${n} versions announced`);
  // a lone edit on a follower that has not seen this file rewritten: announced after STABLE_MS
  const other = new SyncIndex(tempDir(t));
  const lib2 = Object.assign(new EventEmitter(), { root: dir, files: () => [], stat: () => info, statOf: () => st });
  const lone = new LocalFollower(lib2 as unknown as Library, other);
  lone.start();
  t.teardown(() => lone.close());
  const t0 = Date.now();
  appendFileSync(file, 'one more\n');
  const s = statSync(file);
  st = { size: s.size, mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino };
  info = { name: 'log.txt', cid: C(++n), mtime: Math.floor(s.mtimeMs / 1000), size: s.size, kind: 'other' };
  lib2.emit('change', { added: ['log.txt'], changed: [], removed: [] });
  for (let i = 0; i < 60 && other.get('log.txt')?.cid !== info.cid; i++) await sleep(25);
  t.equal(other.get('log.txt')?.cid, info.cid, 'a lone edit is announced');
  t.ok(Date.now() - t0 < STABLE_MS + 600, `after ${Date.now() - t0} ms (STABLE_MS ${STABLE_MS})`);
});

t.test('a file deleted here (not by sync) is said, once', async (t) => {
  const dir = tempDir(t);
  const idx = new SyncIndex(dir);
  const info: FileInfo = { name: 'gone.txt', cid: C(1), mtime: 1_500_000_000, size: 1, kind: 'other' };
  const lib = Object.assign(new EventEmitter(), { root: dir, files: () => [info], stat: () => info, statOf: () => undefined });
  const said: string[] = [];
  const follower = new LocalFollower(lib as unknown as Library, idx, (names) => said.push(...names));
  follower.start();
  t.teardown(() => follower.close());
  t.equal(idx.get('gone.txt')?.deleted, undefined, 'followed at start');
  lib.emit('change', { added: [], changed: [], removed: ['gone.txt'] }); // the file was never written: it is gone
  t.same(said, ['gone.txt'], 'the deletion is said');
  t.ok(idx.get('gone.txt')?.deleted !== undefined, 'and remembered');
  lib.emit('change', { added: [], changed: [], removed: ['gone.txt'] });
  t.same(said, ['gone.txt'], 'not twice');
});

t.test('what is left to do: tickets and their bytes, kept as tickets come, change and go', async (t) => {
  const { TicketQueue } = await import('../lib/sync/tickets.js');
  const q = new TicketQueue();
  const live = (name: string, size: number, cid = C(size)) => ({ name, cid, mtime: 1, size });
  q.add('a', live('a', 100), [], false);
  q.add('b', live('b', 50), [], false);
  q.add('c', { ...live('c', 70), deleted: 5 }, [], false);
  t.same(q.toGo(), { files: 3, bytes: 150 }, 'a deletion weighs nothing');
  q.add('a', live('a', 30), [], false);
  t.same(q.toGo(), { files: 3, bytes: 80 }, 'a newer version replaces the old weight');
  const b = [...q.values()].find((x) => x.name === 'b')!;
  q.done(b);
  q.done(b);
  t.same(q.toGo(), { files: 2, bytes: 30 }, 'done once, counted once');
});

t.test('tickets: a plan that no longer calls for one withdraws it; a changed version here updates it', async (t) => {
  const { TicketQueue } = await import('../lib/sync/tickets.js');
  const q = new TicketQueue();
  const live = (name: string, size: number, cid = C(size)) => ({ name, cid, mtime: 1, size });
  q.add('a', live('a', 100), [], false, C(1));
  q.add('b', live('b', 50), [], false);
  q.withdraw('a');
  t.same([...q.values()].map((x) => x.name), ['b'], 'withdrawn (ours won, or agreed, since it was planned)');
  t.same(q.toGo(), { files: 1, bytes: 50 }, 'and its bytes are no longer to go');
  q.add('b', live('b', 50), [], true, C(2));
  const b = [...q.values()][0]!;
  t.equal(b.conflict, true, 'the same version coming, now against an edit here: a conflict (ours is kept as a copy)');
  t.equal(b.here, C(2), 'planned against the edit');
  b.started = true;
  q.withdraw('b');
  q.add('b', live('b', 50), [], false, C(3));
  t.ok(q.current(b) && b.conflict && b.here === C(2), 'one being worked on is neither withdrawn nor changed under it');
});
