/**
 * A big file (more than one chunk) sync fetches keeps the version it replaces at its name until
 * the new one is whole and verified (ticket-run.ts, get's beforeReplace). Before, the version here
 * went to the trash (or its conflict copy) first: a download that never completed (its only
 * holder left) left no file at the name while the index still called
 * the old version live there (hostile review 52, minor). In-process sync peers on 127.0.0.1.
 */
import t from 'tap';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { prng, randomBytes } from './helpers/prng.js';
import { converge, stopPeer, editAgo, agreedPair } from './helpers/sync-peers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BIG = 8 * 1024 * 1024 + 17; // nine chunks: the chunked get, not a small-file pipe


t.test('a big fetch that does not complete (its holder left, then sync stopped) leaves the version here at its name', async (t) => {
  const v0 = randomBytes(prng(5), BIG);
  const { dh, da, h, a } = await agreedPair(t, 'big.bin', v0, 120);
  t.equal(sha(readFileSync(path.join(da, 'big.bin'))), sha(v0), 'a has the first version');
  const cid0 = a.sync.index.get('big.bin')?.cid;

  // h makes a newer version and announces it, and stops as soon as a starts fetching it
  const v1 = randomBytes(prng(6), BIG);
  editAgo(dh, 'big.bin', v1, 60);
  await h.node.library.refresh();
  t.not(h.sync.index.get('big.bin')?.cid, cid0, 'h announces the newer version');
  let stopping: Promise<void> | null = null;
  a.sync.on('fetching', (e) => {
    if (e.name === 'big.bin') stopping ??= stopPeer(h);
  });
  const dropped: string[] = [];
  a.sync.on('warning', (w) => w.startsWith('big.bin: dropped') && dropped.push(w));
  const once = a.sync.syncOnce();
  // a's download lost its only holder; it would wait for others (10 s a try, 3 tries): a stops
  for (let i = 0; i < 100 && dropped.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.ok(stopping, 'h stopped as a started to fetch');
  t.equal(dropped.length, 1, 'a lost h');
  await stopPeer(a);
  await once;
  t.equal(a.sync.index.get('big.bin')?.cid, cid0, 'the index still says the first version');
  t.ok(existsSync(path.join(da, 'big.bin')), 'a file is at the name (before: none, it was in the trash)');
  t.equal(sha(readFileSync(path.join(da, 'big.bin'))), sha(v0), 'and it is the first version, whole');
  const trash = path.join(da, '.swarm', 'trash');
  t.same(existsSync(trash) ? readdirSync(trash) : [], [], 'nothing went to the trash');
});

t.test('a big fetch that completes still keeps the version it replaces (the trash)', async (t) => {
  const v0 = randomBytes(prng(7), BIG);
  const { dh, da, h, a } = await agreedPair(t, 'big.bin', v0, 120);
  const v1 = randomBytes(prng(8), BIG);
  editAgo(dh, 'big.bin', v1, 60);
  const replaced: string[] = [];
  a.sync.on('fetched', (e) => e.replaced && replaced.push(e.name));
  await converge([h, a], 2);
  t.equal(sha(readFileSync(path.join(da, 'big.bin'))), sha(v1), 'a has the newer version');
  t.same(replaced, ['big.bin'], 'and said the old one was kept');
  const trash = path.join(da, '.swarm', 'trash');
  const kept = readdirSync(trash, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  t.ok(kept.some((e) => sha(readFileSync(path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))) === sha(v0)), 'the first version is in the trash');
});

t.test('an edit made here while a big file comes is not replaced by the older version coming (nor trashed as replaced)', async (t) => {
  const v0 = randomBytes(prng(9), BIG);
  // h sends at 4 MiB/s: a's download of h's edit takes ~2 s
  const { dh, da, h, a } = await agreedPair(t, 'big.bin', v0, 120, { maxUploadBytesPerSec: 4 << 20 });
  t.equal(sha(readFileSync(path.join(da, 'big.bin'))), sha(v0), 'a has the common version');
  const v1 = randomBytes(prng(10), BIG);
  editAgo(dh, 'big.bin', v1, 60);
  await h.node.library.refresh();
  // the user at a edits big.bin (now) while h's older edit is coming
  const v2 = randomBytes(prng(11), BIG);
  // (at once when the fetch starts: 300 ms later, a fresh-clone run on a loaded machine had the
  // whole file in before the edit, and the edit then landed inside the rename's own moments)
  a.sync.on('fetching', (e) => {
    if (e.name === 'big.bin') writeFileSync(path.join(da, 'big.bin'), v2);
  });
  await a.sync.syncOnce();
  t.equal(sha(readFileSync(path.join(da, 'big.bin'))), sha(v2), "the user's edit is still at the name (before: h's older version, the edit in the trash)");
  // the edit seen, the members converge: the newer (a's) wins, h's is kept as its conflict copy
  await a.node.library.refresh();
  await converge([h, a], 4);
  for (const [who, dir] of [['a', da], ['h', dh]] as const) {
    t.equal(sha(readFileSync(path.join(dir, 'big.bin'))), sha(v2), `${who}: the newest edit at the name`);
    const copies = readdirSync(dir).filter((f) => f.startsWith('big.sync-conflict-'));
    t.equal(copies.length, 1, `${who}: one conflict copy`);
    t.equal(copies[0] && sha(readFileSync(path.join(dir, copies[0]))), sha(v1), `${who}: it holds h's edit`);
  }
});
