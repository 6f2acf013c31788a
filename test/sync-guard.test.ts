/**
 * Files sync cannot see are not files deleted (hostile review 47). A folder made unreadable
 * (`chmod 000`; here a symlink loop, as tests run as root), the whole share moved away or replaced
 * (`mv DIR DIR.old && mkdir DIR`) sent the deletion of every file under it to every member, and
 * the maker deleted its own files too once they were back. A peer's deletion of a file whose folder
 * is now a symlink out of the share deleted the file and removed its folder outside the share. A
 * disk mounted in a subfolder and unmounted sent the deletion of its every file too.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SyncIndex } from '../lib/sync/index-store.js';
import { ManifestCache } from '../lib/share/manifest-cache.js';
import { makeManifest } from '../lib/manifest.js';
import { syncPeer as peer, connect, converge, stillFile, stopPeer } from './helpers/sync-peers.js';
import { tempDir } from './helpers/tmp.js';

const C = (n: number) => n.toString(16).padStart(64, '0');

const file = stillFile;

t.test('a file whose folder cannot be read is not taken for deleted; one really gone is', async (t) => {
  const dir = tempDir(t);
  const idx = new SyncIndex(dir);
  file(dir, 'sub/a.txt');
  file(dir, 'gone/b.txt');
  idx.followSome([{ name: 'sub/a.txt', cid: C(1), mtime: 1, size: 1, kind: 'document' }, { name: 'gone/b.txt', cid: C(2), mtime: 1, size: 1, kind: 'document' }], []);
  // sub/ unreadable (stat of what is under it fails with ELOOP, as with EACCES, EIO or ENOTCONN)
  rmSync(path.join(dir, 'sub'), { recursive: true });
  symlinkSync('sub', path.join(dir, 'sub'));
  rmSync(path.join(dir, 'gone'), { recursive: true });
  idx.followSome([], ['sub/a.txt', 'gone/b.txt']);
  t.equal(idx.get('sub/a.txt')?.deleted, undefined, 'under an unreadable folder: still live');
  t.not(idx.get('gone/b.txt')?.deleted, undefined, 'really gone: a deletion');
});

t.test('the share moved away and back (or replaced): no member loses a file', async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  file(da, 'top.txt');
  file(da, 'sub/one.txt');
  const a = await peer(t, da);
  const b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 2);
  t.ok(existsSync(path.join(db, 'sub', 'one.txt')), 'b has it');

  renameSync(da, `${da}.old`);
  mkdirSync(da);
  t.teardown(() => rmSync(`${da}.old`, { recursive: true, force: true }));
  file(db, 'new-on-b.txt');
  // the stand-in folder holds files of its own (newcomer 48: they replaced ours on every member)
  file(da, 'top.txt', 'not ours');
  file(da, 'intruder.txt');
  // and the user changes the real one meanwhile (newcomer 48: never passed on)
  unlinkSync(path.join(`${da}.old`, 'sub', 'one.txt'));
  file(`${da}.old`, 'made-while-away.txt');
  await converge([a, b], 2);
  t.ok(existsSync(path.join(db, 'top.txt')) && existsSync(path.join(db, 'sub', 'one.txt')), 'b: nothing deleted while a\'s folder was away');
  t.notOk(existsSync(path.join(da, 'new-on-b.txt')), 'nothing fetched into the stand-in folder');
  t.notOk(existsSync(path.join(db, 'intruder.txt')), "nothing of the stand-in folder's passed on");
  t.equal(readFileSync(path.join(db, 'top.txt'), 'utf8'), 'top.txt', "b's top.txt is still ours");
  t.ok(a.warnings.some((w) => /not the folder sync started on/.test(w)), 'a says so');

  rmSync(da, { recursive: true });
  renameSync(`${da}.old`, da);
  await converge([a, b], 3);
  await new Promise((r) => setTimeout(r, 300)); // (a looks at its returned folder whole: a refresh, then the follow)
  await converge([a, b], 2);
  for (const [who, dir] of [['a', da], ['b', db]] as const) {
    t.ok(existsSync(path.join(dir, 'top.txt')), `${who}: top.txt still there`);
    t.equal(readFileSync(path.join(dir, 'top.txt'), 'utf8'), 'top.txt', `${who}: ours, not the stand-in's`);
    t.ok(existsSync(path.join(dir, 'new-on-b.txt')), `${who}: and b's new file`);
    t.ok(existsSync(path.join(dir, 'made-while-away.txt')), `${who}: and the file made in the folder while it was away`);
    t.notOk(existsSync(path.join(dir, 'sub', 'one.txt')), `${who}: and the deletion made there then`);
    t.notOk(existsSync(path.join(dir, 'intruder.txt')), `${who}: nothing of the stand-in folder`);
  }
});

t.test('a peer\'s deletion never deletes or removes through a symlinked folder (outside the share)', async (t) => {
  const [da, db, out] = [tempDir(t), tempDir(t), tempDir(t)];
  file(da, 'top.txt');
  file(da, 'pics/deep/one.jpg');
  file(da, 'pics/two.jpg');
  const a = await peer(t, da);
  const b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 2);
  // a's user moves pics/ to another place and links it back (its files stay live in a's index:
  // they exist through the link)
  renameSync(path.join(da, 'pics'), path.join(out, 'pics'));
  symlinkSync(path.join(out, 'pics'), path.join(da, 'pics'));
  await converge([a, b], 1);
  unlinkSync(path.join(db, 'pics', 'deep', 'one.jpg'));
  const said: string[] = [];
  a.sync.on('deleted', (e) => said.push(e.name));
  await converge([a, b], 2);
  t.ok(existsSync(path.join(out, 'pics', 'deep', 'one.jpg')), 'the file outside the share is not deleted');
  t.ok(existsSync(path.join(out, 'pics', 'deep')), 'nor its folder removed');
  t.same(said, [], 'a does not say it deleted it');
  t.ok(a.warnings.some((w) => w.includes('pics/deep/one.jpg') && w.includes('left alone')), 'it says it left it alone, and why');
});

/** A tmpfs mounted at `dir` (root only): why not, or null once mounted. */
function mountTmpfs(dir: string): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? null : `mount -t tmpfs failed here: ${(r.stderr || r.error?.message || '').trim()}`;
}

/**
 * A share `da` with top.txt and a tmpfs mounted at da/disk, and an empty folder `db`; unmounted
 * and removed at teardown (not tempDir: the folder goes only after the disk is unmounted, whatever
 * order teardowns run in). Null, with the test planned as skipped, where mounting is not allowed.
 * `state.mounted` says whether the teardown must unmount.
 */
function shareWithDisk(t: Test): { da: string; db: string; mnt: string; state: { mounted: boolean } } | null {
  const da = mkdtempSync(path.join(tmpdir(), 'swarm-test-'));
  const mnt = path.join(da, 'disk');
  const state = { mounted: false };
  t.teardown(() => {
    if (state.mounted) spawnSync('umount', ['-l', mnt], { timeout: 10_000 });
    rmSync(da, { recursive: true, force: true });
  });
  const db = tempDir(t);
  file(da, 'top.txt');
  mkdirSync(mnt);
  const why = mountTmpfs(mnt);
  if (why) {
    t.plan(0, `skipped: ${why} (the guard is for unmounts, which this test makes with a tmpfs)`);
    return null;
  }
  state.mounted = true;
  return { da, db, mnt, state };
}

t.test('a disk mounted in a subfolder and unmounted: its files are not taken for deleted, on no member', async (t) => {
  const disk = shareWithDisk(t);
  if (!disk) return;
  const { da, db, mnt, state } = disk;
  file(da, 'disk/photos/a.jpg', 'on the disk');
  const a = await peer(t, da);
  const b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 2);
  t.ok(existsSync(path.join(db, 'disk', 'photos', 'a.jpg')), 'b has the disk\'s file');
  // (lazy: the node still has the file open to serve it, as a user's `umount -l` or a disk pulled out)
  t.equal(spawnSync('umount', ['-l', mnt], { timeout: 10_000 }).status, 0, 'unmounted');
  state.mounted = false;
  await converge([a, b], 2);
  t.equal(a.sync.index.get('disk/photos/a.jpg')?.deleted, undefined, 'a: not a deletion');
  t.ok(existsSync(path.join(db, 'disk', 'photos', 'a.jpg')), 'b keeps it');
  t.ok(existsSync(mnt), 'a: the mount point stays');
  t.ok(a.warnings.some((w) => w.includes('not mounted there any more')), 'a said why');
  // a file deleted on the disk while it is mounted is a deletion as ever
  t.equal(mountTmpfs(mnt), null, 'mounted again (empty: a new disk)');
  state.mounted = true;
  file(da, 'disk/new.txt', 'x');
  await converge([a, b], 2);
  t.ok(existsSync(path.join(db, 'disk', 'new.txt')), 'b has the new disk\'s file');
  unlinkSync(path.join(da, 'disk', 'new.txt'));
  await converge([a, b], 2);
  t.notOk(existsSync(path.join(db, 'disk', 'new.txt')), 'deleted on the disk: deleted on b');
  t.equal(spawnSync('umount', ['-l', mnt], { timeout: 10_000 }).status, 0, 'unmounted at the end');
  state.mounted = false;
});

t.test('a disk unmounted while sync was stopped: at the next start its files are not taken for deleted; deleted with the disk there, they are', async (t) => {
  const disk = shareWithDisk(t);
  if (!disk) return;
  const { da, db, mnt, state } = disk;
  file(da, 'disk/photos/a.jpg', 'on the disk');
  file(da, 'disk/b.txt', 'also on the disk');
  let a = await peer(t, da);
  const b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 2);
  t.ok(existsSync(path.join(db, 'disk', 'photos', 'a.jpg')), 'b has the disk\'s file');
  await stopPeer(a);
  t.equal(spawnSync('umount', ['-l', mnt], { timeout: 10_000 }).status, 0, 'unmounted while a was stopped');
  state.mounted = false;
  a = await peer(t, da);
  connect([a, b]);
  await converge([a, b], 2);
  t.equal(a.sync.index.get('disk/photos/a.jpg')?.deleted, undefined, 'a: not a deletion');
  t.ok(existsSync(path.join(db, 'disk', 'photos', 'a.jpg')) && existsSync(path.join(db, 'disk', 'b.txt')), 'b keeps them');
  t.ok(a.warnings.some((w) => w.includes('not mounted there any more')), 'a said why');
  // the same disk back, one of its files deleted while a was stopped: that is a deletion
  await stopPeer(a);
  t.equal(mountTmpfs(mnt), null, 'mounted again');
  state.mounted = true;
  file(da, 'disk/b.txt', 'also on the disk');
  a = await peer(t, da);
  connect([a, b]);
  await converge([a, b], 2);
  t.equal(a.sync.index.get('disk/b.txt')?.deleted, undefined, 'b.txt, seen on the disk, is live');
  await stopPeer(a);
  unlinkSync(path.join(mnt, 'b.txt'));
  a = await peer(t, da);
  connect([a, b]);
  await converge([a, b], 2);
  t.notOk(existsSync(path.join(db, 'disk', 'b.txt')), 'deleted on the mounted disk while stopped: deleted on b');
  t.equal(spawnSync('umount', ['-l', mnt], { timeout: 10_000 }).status, 0, 'unmounted at the end');
  state.mounted = false;
});

t.test('the share moved away: its state is not saved into a new folder of its name (mv DIR.old DIR landed inside it)', async (t) => {
  const base = tempDir(t);
  const dir = path.join(base, 'share');
  mkdirSync(path.join(dir, '.swarm'), { recursive: true });
  const cache = ManifestCache.inStateDir(path.join(dir, '.swarm'));
  cache.set('a.txt', { size: 1, mtimeMs: 1, dev: 1, ino: 1 }, makeManifest(1, 1 << 20, Buffer.alloc(32)));
  renameSync(dir, path.join(base, 'share.old'));
  await cache.save();
  t.notOk(existsSync(dir), 'the share folder is not made again');
  renameSync(path.join(base, 'share.old'), dir);
  await cache.save();
  t.ok(existsSync(path.join(dir, '.swarm', 'manifests.json')), 'saved once it is back');
});
