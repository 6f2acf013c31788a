/**
 * Small files verified and staged in batches (landing.ts, stage-files.ts), against a pool that
 * answers late (hostile review 54): a sync closed while a stage task is out lands those files
 * before close() returns and none after (the index is saved and the folder's lock released
 * right after it), leaves no temp file and no descriptor; and bytes fetched but not yet staged
 * count against the pipe's PIPE_BYTES, so a busy pool cannot make it hold more (60 MiB before).
 */
import t from 'tap';
import { mkdirSync, readdirSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { prng, randomBytes } from './helpers/prng.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer } from './helpers/sync-peers.js';
import type { StageTask } from '../lib/stage-files.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fdCount = () => readdirSync('/proc/self/fd').length;

function fill(dir: string, n: number, size: number, seed = 7): void {
  const rand = prng(seed);
  mkdirSync(path.join(dir, 'd'), { recursive: true });
  for (let i = 0; i < n; i++) {
    const p = path.join(dir, 'd', `f${i}.bin`);
    writeFileSync(p, randomBytes(rand, size));
    utimesSync(p, 1_600_000_000 + i, 1_600_000_000 + i);
  }
}
const landedIn = (dir: string) => (readdirSync(path.join(dir, 'd'), { withFileTypes: false }) as string[]).filter((f) => !f.includes('.swarm-tmp-')).length;
const tempsIn = (dir: string) => (existsSync(path.join(dir, 'd')) ? (readdirSync(path.join(dir, 'd')) as string[]).filter((f) => f.includes('.swarm-tmp-')) : []);

for (const onPool of [false, true])
t.test(`close while a stage task is pending (${onPool ? 'pool thread' : 'inline'}): nothing lands after close, no temp, no fd`, async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  fill(da, 40, 10_000);
  const a = await peer(t, da);
  const b = await peer(t, db, onPool ? { threads: 1, stageOnPool: true } : {});
  b.node.book.add({ ip: '127.0.0.1', port: a.node.port }, 'neighbor');
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const landing = (b.sync as any).run.landing;
  const pool = landing.stagePool;
  const orig = pool.stageFiles.bind(pool);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let calls = 0;
  pool.stageFiles = async (task: Omit<StageTask, 'op'>) => {
    calls++;
    await gate;
    return orig(task);
  };
  const fds0 = fdCount();
  let lateFetched = 0;
  b.sync.on('fetched', () => { if (closedAt) lateFetched++; });
  let closedAt = 0;
  void b.sync.syncOnce().catch(() => {});
  for (let i = 0; i < 200 && calls === 0; i++) await sleep(10);
  t.ok(calls > 0, 'a stage task is pending');
  setTimeout(() => release(), 300); // the task answers while close() runs
  await b.sync.close();
  closedAt = Date.now();
  const atClose = landedIn(db);
  const indexAtClose = b.sync.index.all().filter((e) => e.deleted === undefined).length;
  release();
  await sleep(1_000);
  const after = landedIn(db);
  t.comment(`index entries 1 s after close: ${b.sync.index.all().filter((e) => e.deleted === undefined).length}; fetched events after close counted below`);
  t.equal(after, atClose, `no file lands after close() returned (fails before) (at close ${atClose}, 1 s later ${after}; index had ${indexAtClose})`);
  t.equal(lateFetched, 0, `no fetched event after close (${lateFetched})`);
  t.same(tempsIn(db), [], 'no temp file left after close');
  t.ok(fdCount() <= fds0 + 6, `no fd left beyond a pool thread's own (control: +6) (before ${fds0}, now ${fdCount()})`);
});

t.test('bytes fetched but not yet staged are bounded by the pipe (PIPE_BYTES 8 MiB), not only by the window', async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  fill(da, 120, 512 * 1024, 9); // 60 MiB in 120 files of 512 KiB
  const a = await peer(t, da);
  const b = await peer(t, db, { threads: 1, stageOnPool: true });
  b.node.book.add({ ip: '127.0.0.1', port: a.node.port }, 'neighbor');
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const pool = (b.sync as any).run.landing.stagePool;
  const orig = pool.stageFiles.bind(pool);
  let held = 0;
  let maxHeld = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  pool.stageFiles = async (task: Omit<StageTask, 'op'>) => {
    const n = task.bytes.reduce((s, x) => s + x.length, 0);
    held += n;
    maxHeld = Math.max(maxHeld, held);
    await gate; // a pool busy elsewhere (hashing a big file) for a while
    held -= n;
    return orig(task);
  };
  void b.sync.syncOnce().catch(() => {});
  await sleep(3_000);
  t.comment(`fetched bytes held waiting for staging while the pool is busy: ${(maxHeld / 2 ** 20).toFixed(1)} MiB`);
  t.ok(maxHeld <= 9 << 20, `held ${(maxHeld / 2 ** 20).toFixed(1)} MiB (pipe cap 8 MiB and one file; fails before: 60 MiB)`);
  release();
  await sleep(1_500);
});
