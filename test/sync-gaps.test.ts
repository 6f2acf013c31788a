/**
 * Small gaps of `swarm sync` found by use, each failing before its fix: a folder that a deletion
 * emptied goes on the deleting member as on the others (they end alike), and one that holds
 * anything else stays on both; the deleting member says "in step" again with its new count of
 * files; a `--key` file that cannot be read is a usage error that carries its stable code.
 */
import t from 'tap';
import { existsSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { serve } from '../lib/serve.js';
import { Syncer } from '../lib/sync/syncer.js';
import { swarm } from './helpers/procs.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer, stopPeer, connect, converge, stillFile } from './helpers/sync-peers.js';

/** The deleting member's grace before it removes a folder its deletions emptied (EMPTIED_GRACE_MS is 10 s). */
const GRACE = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The count of files the next 'idle' ("in step") says, or null when none comes within `ms`. */
function nextIdle(sync: Syncer, ms = 5_000): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sync.off('idle', on);
      resolve(null);
    }, ms);
    const on = (e: { files: number }) => {
      clearTimeout(timer);
      resolve(e.files);
    };
    sync.once('idle', on);
  });
}

const file = stillFile;

t.test('a folder emptied by a deletion goes on the deleting member too, and that member says in step with its new count', async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  file(da, 'top.txt');
  file(da, 'sub/only.txt');
  file(da, 'nest/deeper/last.txt');
  file(da, 'stays/a.txt');
  file(da, 'stays/b.txt');
  const a = await peer(t, da, { emptiedGraceMs: GRACE });
  const b = await peer(t, db, { emptiedGraceMs: GRACE });
  connect([a, b]);
  await converge([a, b], 2);
  t.ok(existsSync(path.join(db, 'sub', 'only.txt')) && existsSync(path.join(db, 'nest', 'deeper', 'last.txt')), 'b has the folders');

  // the last file of sub/ deleted by hand on a; a whole folder removed (its parent left empty);
  // one file of a folder that keeps another
  unlinkSync(path.join(da, 'sub', 'only.txt'));
  rmSync(path.join(da, 'nest', 'deeper'), { recursive: true });
  unlinkSync(path.join(da, 'stays', 'a.txt'));
  const said = nextIdle(a.sync);
  await a.node.library.refresh(); // (the watch's job in a running sync)
  t.equal(await said, 2, 'a says in step again, with 2 files (top.txt, stays/b.txt), not the 5 it had');
  await converge([a, b], 2);
  t.ok(existsSync(path.join(da, 'sub')), 'a: the emptied folder stays for the grace (a user may fill it again)');
  await sleep(GRACE * 2.5);

  for (const [who, dir] of [['a (where the files were deleted)', da], ['b', db]] as const) {
    t.notOk(existsSync(path.join(dir, 'sub')), `${who}: the folder the deletion emptied is gone`);
    t.notOk(existsSync(path.join(dir, 'nest')), `${who}: and the one rm -r of its only folder emptied`);
    t.ok(existsSync(path.join(dir, 'stays', 'b.txt')), `${who}: a folder with a file left stays`);
  }

  // a folder that holds anything besides the deleted file stays (rmdir refuses it): here a file
  // sync does not share, on a only
  file(da, 'kept/doc.txt');
  await converge([a, b], 2);
  t.ok(existsSync(path.join(db, 'kept', 'doc.txt')), 'b has kept/doc.txt');
  writeFileSync(path.join(da, 'kept', '.swarm-tmp-sync-1-1'), 'not shared');
  unlinkSync(path.join(da, 'kept', 'doc.txt'));
  const said2 = nextIdle(a.sync);
  await a.node.library.refresh();
  t.equal(await said2, 2, 'in step: 2 files');
  await converge([a, b], 2);
  await sleep(GRACE * 2.5);
  t.ok(existsSync(path.join(da, 'kept', '.swarm-tmp-sync-1-1')), 'a: a folder with something left in it is not touched');
  t.notOk(existsSync(path.join(db, 'kept')), 'b: emptied, gone');
});

t.test('a folder emptied by hand and filled again within the grace stays (rm out/*.o; cc -o out/x.o)', async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  file(da, 'out/a.o');
  file(da, 'touched/t.txt');
  const a = await peer(t, da, { emptiedGraceMs: GRACE });
  const b = await peer(t, db, { emptiedGraceMs: GRACE });
  connect([a, b]);
  await converge([a, b], 2);
  unlinkSync(path.join(da, 'out', 'a.o'));
  unlinkSync(path.join(da, 'touched', 't.txt'));
  await a.node.library.refresh();
  await sleep(GRACE / 3);
  writeFileSync(path.join(da, 'out', 'x.o'), 'built again'); // the user's next step, in the folder it emptied
  utimesSync(path.join(da, 'out', 'x.o'), Date.now() / 1000 - 60, Date.now() / 1000 - 60); // (held still: announced at the next look)
  writeFileSync(path.join(da, 'touched', 'scratch'), 'x');
  unlinkSync(path.join(da, 'touched', 'scratch')); // emptied again, but touched within the grace
  await sleep(GRACE * 2.5);
  t.ok(existsSync(path.join(da, 'out', 'x.o')), 'the folder was there for the new file');
  t.ok(existsSync(path.join(da, 'touched')), 'a folder touched within the grace stays, empty');
  await converge([a, b], 2);
  t.ok(existsSync(path.join(db, 'out', 'x.o')), 'b has the new file');
  // (b removed out/ when it took a.o's deletion, then landed x.o there: its lander had taken the
  // folder for there and failed to open the temp file, retrying without end)
  t.same(b.warnings.filter((w) => w.includes('x.o')), [], 'b landed it at once, no failed attempt');
  t.notOk(existsSync(path.join(db, 'touched')), 'b: the folder emptied by the deletion it took is gone');
});

t.test('deleted while sync was stopped: said when it starts again, and the emptied folder goes as on the others', async (t) => {
  const [da, db] = [tempDir(t), tempDir(t)];
  file(da, 'top.txt');
  file(da, 'away/only.txt');
  let a = await peer(t, da);
  const b = await peer(t, db);
  connect([a, b]);
  await converge([a, b], 2);
  t.ok(existsSync(path.join(db, 'away', 'only.txt')), 'b has it');
  await stopPeer(a);
  unlinkSync(path.join(da, 'away', 'only.txt'));
  const said: string[] = [];
  const node = await serve(da, { port: 0, host: '127.0.0.1', noTracker: true, threads: 0, watch: false });
  const sync = new Syncer(node, { open: true, pullMs: 60_000, emptiedGraceMs: GRACE });
  sync.on('deletedHere', (e) => said.push(e.name));
  t.teardown(async () => {
    await sync.close();
    await node.close({ graceful: false });
  });
  const idle = nextIdle(sync);
  await sync.start();
  t.same(said, ['away/only.txt'], 'the deletion made while stopped is said at start');
  t.equal(await idle, 1, 'in step: 1 file');
  await sleep(GRACE * 2.5);
  t.notOk(existsSync(path.join(da, 'away')), 'a: the folder it emptied is gone (after the grace)');
  a = { ...a, node, sync };
  connect([a, b]);
  await converge([a, b], 2);
  t.notOk(existsSync(path.join(db, 'away')), 'b: deleted, its folder gone');
  t.ok(existsSync(path.join(da, 'top.txt')) && existsSync(path.join(db, 'top.txt')), 'the rest stays');
});

t.test('--no-delete: a folder emptied here stays (the deletion is not passed on, the others keep the file)', async (t) => {
  const da = tempDir(t);
  file(da, 'sub/only.txt');
  file(da, 'top.txt');
  const node = await serve(da, { port: 0, host: '127.0.0.1', noTracker: true, threads: 0, watch: false });
  const sync = new Syncer(node, { open: true, noDelete: true, pullMs: 60_000 });
  await sync.start();
  t.teardown(async () => {
    await sync.close();
    await node.close({ graceful: false });
  });
  unlinkSync(path.join(da, 'sub', 'only.txt'));
  const said = nextIdle(sync);
  await node.library.refresh();
  t.equal(await said, 1, 'in step: 1 file');
  t.ok(existsSync(path.join(da, 'sub')), 'the folder stays');
});

t.test('swarm sync --key FILE that cannot be read: exit 2, and the message carries SWARM_ERR_USAGE', async (t) => {
  const dir = tempDir(t);
  const missing = path.join(dir, 'no-such-key');
  for (const key of [missing, dir]) {
    const text = swarm(t, ['sync', dir, '--key', key, '--once', '--port', '0', '--no-tracker']);
    t.equal((await text.exit).code, 2, `--key ${key}: exit 2`);
    t.match(text.stderr(), /--key <keyfile>' argument .* is invalid.*cannot read .*\[SWARM_ERR_USAGE\]/, 'text: the option, why, and the stable code');
    t.notMatch(text.stderr(), /\n\s+at /, 'no stack trace');
    const json = swarm(t, ['sync', dir, '--key', key, '--once', '--port', '0', '--no-tracker', '--json']);
    t.equal((await json.exit).code, 2);
    t.match(JSON.parse(json.lines.at(-1) ?? '{}'), { event: 'error', code: 'SWARM_ERR_USAGE', message: /--key <keyfile>.*cannot read/ }, '--json: the same code in the error line');
    t.equal(json.stderr(), '', '--json: nothing on stderr');
  }
  t.notOk(existsSync(path.join(dir, '.swarm')), 'nothing was made in the folder');
});
