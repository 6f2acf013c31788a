/**
 * The share's synchronous small calls back off to the thread pool after a slow one
 * (lib/share/sync-gate.ts): the policy alone with the clock passed in, then the serving path
 * (openChecked, FileReader.readv, checkUnchanged, close) with the process's gate closed: the same bytes and checks,
 * through the pool.
 */
import t from 'tap';
import { appendFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SyncGate, SLOW_SYNC_MS, SLOW_OF_RECENT, RECENT_CALLS, SYNC_BACKOFF_MS, MAX_SYNC_BACKOFF_MS, BLOCKED_MS_PER_WINDOW, WINDOW_MS, MIN_SLOW_IN_WINDOW, VERY_SLOW_MS, shareSyncGate } from '../lib/share/sync-gate.js';
import { FileReader, openChecked, fileHandles } from '../lib/share/file-source.js';
import { ERROR_CODES } from '../lib/errors.js';
import { tempDir } from './helpers/tmp.js';

t.test('sync gate: SLOW_OF_RECENT slow calls among the last RECENT_CALLS close it for SYNC_BACKOFF_MS, doubled while they stay slow, reset after a quiet spell', async (t) => {
  const g = new SyncGate();
  const slow = (now: number, n = SLOW_OF_RECENT) => {
    for (let i = 0; i < n; i++) g.took(SLOW_SYNC_MS * 5, now);
  };
  t.ok(g.allowed(0), 'open at first');
  g.took(SLOW_SYNC_MS / 2, 10);
  t.ok(g.allowed(11), 'a fast call changes nothing');
  slow(20, SLOW_OF_RECENT - 1);
  t.ok(g.allowed(21), 'nor fewer than SLOW_OF_RECENT slow ones (a thread preempted on a busy machine)');
  for (let i = 0; i < RECENT_CALLS; i++) g.took(0, 30);
  slow(40, 1);
  t.ok(g.allowed(41), 'slow calls older than the last RECENT_CALLS are forgotten');
  for (let i = 0; i < RECENT_CALLS; i++) g.took(0, 50);
  slow(100);
  t.notOk(g.allowed(101), 'SLOW_OF_RECENT of the last RECENT_CALLS slow: closed');
  t.notOk(g.allowed(100 + SYNC_BACKOFF_MS - 1), 'for SYNC_BACKOFF_MS');
  t.ok(g.allowed(100 + SYNC_BACKOFF_MS), 'then it opens');
  slow(100 + SYNC_BACKOFF_MS + 1);
  t.notOk(g.allowed(100 + 2 * SYNC_BACKOFF_MS + 2), 'slow again at once: closed twice as long');
  t.ok(g.allowed(100 + 3 * SYNC_BACKOFF_MS + 2), 'and open after that');
  let now = 100 + 3 * SYNC_BACKOFF_MS + 2;
  for (let i = 0; i < 10; i++) {
    slow(now);
    while (!g.allowed(now)) now += 1_000;
  }
  slow(now);
  t.notOk(g.allowed(now + MAX_SYNC_BACKOFF_MS - 1), 'never longer than MAX_SYNC_BACKOFF_MS...');
  t.ok(g.allowed(now + MAX_SYNC_BACKOFF_MS), '...however often');
  now += 4 * MAX_SYNC_BACKOFF_MS;
  slow(now);
  t.ok(g.allowed(now + SYNC_BACKOFF_MS), 'after a quiet spell it closes for SYNC_BACKOFF_MS again');
  t.equal(g.counters.closed, 14, 'closings counted');
  t.ok(g.counters.deferred > 0, 'calls sent to the pool counted');
});

t.test('sync gate: a disk slow for only some calls closes it by the time they held the loop', async (t) => {
  const g = new SyncGate();
  // one call in five a 50 ms seek, the rest cached: never SLOW_OF_RECENT of RECENT_CALLS
  let now = 0;
  let closedAt = -1;
  for (let i = 0; i < 40 && closedAt < 0; i++) {
    const ms = i % 5 === 4 ? 50 : 0.01;
    now += ms;
    g.took(ms, now);
    if (!g.allowed(now)) closedAt = i;
  }
  t.ok(closedAt >= 0, `closed after ${closedAt + 1} calls (${MIN_SLOW_IN_WINDOW} slow ones, ${BLOCKED_MS_PER_WINDOW} ms held within ${WINDOW_MS} ms)`);
  const h = new SyncGate();
  h.took(BLOCKED_MS_PER_WINDOW * 3, 10);
  h.took(SLOW_SYNC_MS + 1, 20);
  t.ok(h.allowed(21), 'one long call (a preempted thread) and another slow one: still open');
  const k = new SyncGate();
  for (let i = 0; i < 20; i++) {
    k.took(40, i * WINDOW_MS);
    for (let j = 0; j < RECENT_CALLS; j++) k.took(0.01, i * WINDOW_MS + 1);
  }
  t.ok(k.allowed(20 * WINDOW_MS), 'slow calls among fast ones, one per window: still open');
});

t.test('sync gate: slow calls mixed with fast ones close it by the time they hold the loop, over window edges too (hostile review 52)', async (t) => {
  // a peer asking for cached and cold pieces in turn: 11 fast calls between slow ones of ms, every
  // `every` ms; with counts reset each window none of these closed it
  for (const [ms, every] of [
    [15, 200],
    [100, 500],
    [300, 500],
  ] as const) {
    const g = new SyncGate();
    let now = 0;
    let closedAt = -1;
    for (let i = 0; i < 40 && closedAt < 0; i++) {
      for (let j = 0; j < 11; j++) g.took(0.01, now + j * 0.01);
      now += every;
      g.took(ms, now);
      if (!g.allowed(now)) closedAt = now;
    }
    t.ok(closedAt >= 0 && closedAt <= 4_000, `${ms} ms calls every ${every} ms: closed at ${closedAt} ms`);
  }
  const v = new SyncGate();
  v.took(VERY_SLOW_MS, 1_000);
  t.notOk(v.allowed(1_001), `one call of ${VERY_SLOW_MS} ms closes it at once (a slow mount; no preemption is that long)`);
});

t.test('with the gate closed, serving opens and reads through the thread pool: same checks, same bytes', async (t) => {
  const dir = realpathSync(tempDir(t));
  const file = path.join(dir, 'small.bin');
  const data = Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 7) & 0xff));
  writeFileSync(file, data);
  const s = statSync(file);
  const st = { size: s.size, mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino };
  // calls that took 50 ms close the process's gate
  for (let i = 0; i < SLOW_OF_RECENT; i++) shareSyncGate.took(50, Date.now());
  t.notOk(shareSyncGate.allowed(Date.now()), 'the gate is closed');
  const deferred = shareSyncGate.counters.deferred;
  const fd = await openChecked(dir, 'small.bin', st);
  const r = new FileReader(fd, 'small.bin', st);
  const a = Buffer.alloc(30_000);
  const b = Buffer.alloc(10_000);
  t.equal(await r.readv([a, b], 0), 40_000, 'a small vectored read, whole');
  t.same(Buffer.concat([a, b]), data, 'the file\'s bytes');
  t.ok(shareSyncGate.counters.deferred >= deferred + 3, 'the open, its fstat and the read went to the pool');
  const check = r.checkUnchanged();
  t.ok(check instanceof Promise, 'the check after each read (fstat) goes to the pool too');
  await check;
  appendFileSync(file, 'x');
  await t.rejects(Promise.resolve().then(() => r.checkUnchanged()), { code: ERROR_CODES.FILE_CHANGED }, 'and still sees the file change');
  await r.close();
  const open0 = fileHandles().open;
  writeFileSync(path.join(dir, 'other.bin'), data);
  const err = await openChecked(dir, 'other.bin', st).then(
    () => null,
    (e: unknown) => e as { code?: string },
  );
  t.match(err, { code: ERROR_CODES.FILE_CHANGED }, 'another file under a checked name is still refused');
  t.equal(fileHandles().open, open0, 'and its descriptor closed');
  const esc = await openChecked(dir, '../x.bin', st).then(
    () => null,
    (e: unknown) => e as { code?: string },
  );
  t.ok(esc && esc.code, `a name leading out is still refused (${esc?.code})`);
});
