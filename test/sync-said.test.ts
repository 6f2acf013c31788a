/**
 * What `swarm sync` says, each failing before its fix: the "in step" count right after a conflict
 * counts the conflict copy; "changed here" is said only where ours was edited here (a member that
 * only had a version another member made says between whom the conflict was); a folder that was
 * moved away and came back is said to be followed again; many files deleted here at once are one
 * line on a terminal (each still an event with --json, and a summary event).
 */
import t from 'tap';
import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { BurstLines, conflictLine } from '../bin/views/sync-view.js';
import { manyDeleted } from '../lib/sync/telling.js';
import { isConflictCopy } from '../lib/sync/plan.js';
import { swarm } from './helpers/procs.js';
import { TrackerServer } from '../lib/tracker/server.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer, connect, converge, editAgo as edit, stillFile, bAwayAEdits } from './helpers/sync-peers.js';

/** Files in `dir`, subfolders included, swarm's own state and sync's temp files left out. */
function filesIn(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && !d.name.startsWith('.swarm-tmp-') && !path.relative(dir, path.join(d.parentPath, d.name)).startsWith('.swarm'))
    .map((d) => d.name);
}

t.test('a conflict lost: in step counts the copy; "changed here" only where ours was edited here', async (t) => {
  // b goes away and edits f.txt there; meanwhile a edits it (older) and c takes a's edit
  const { a, c, b: away } = await bAwayAEdits(t, { 'g.txt': 'other\n' });
  t.equal(c.sync.index.get('f.txt')?.agreed, c.sync.index.get('f.txt')?.cid, "c has a's edit, fetched (not edited there)");
  edit(away.dir, 'f.txt', 'edited on b, later\n', 30);
  const b = await peer(t, away.dir);
  connect([a, b, c]);

  const said = new Map<string, { name: string; copy: string; here: boolean; ours: string[]; theirs: string[] }>();
  // the first in step after the conflict, and the files in the folder then
  const idles = new Map<string, { said: number; there: string[] }>();
  for (const [who, p] of [['a', a], ['c', c]] as const) {
    p.sync.on('conflict', (e) => said.set(who, e));
    p.sync.on('idle', (e) => {
      if (said.has(who) && !idles.has(who)) idles.set(who, { said: e.files, there: filesIn(p.dir) });
    });
  }
  // c first: it reads a (still with its edit) and b (the newer one)
  await converge([c, a, b], 1);
  for (const who of ['a', 'c']) {
    t.ok(said.has(who), `${who}: a conflict, lost`);
    const idle = idles.get(who);
    t.equal(idle?.said, idle?.there.length, `${who}: the in step right after it counts the copy (${idle?.there.join(', ')})`);
  }
  const [ea, ec] = [said.get('a')!, said.get('c')!];
  t.match(ea, { name: 'f.txt', here: true }, 'a: ours was edited here');
  const bc = [`127.0.0.1:${b.node.port}`, `127.0.0.1:${c.node.port}`];
  t.ok(ea.theirs.length > 0 && ea.theirs.every((p) => bc.includes(p)), "a: it lost to b's version (c's by then, or both)");
  t.match(conflictLine(ea), /^conflict: f\.txt changed here and elsewhere; ours is kept as f\.sync-conflict-/, 'a: "changed here"');
  t.match(ec, { name: 'f.txt', here: false, ours: [`127.0.0.1:${a.node.port}`], theirs: [`127.0.0.1:${b.node.port}`] }, "c: not edited there; a's version lost to b's");
  t.notMatch(conflictLine(ec), /changed here/, 'c: not "changed here"');
  // named by the devices that made the two versions (a's and b's), as the copy's name has them
  t.match(ec, { oursBy: a.sync.deviceId, theirsBy: b.sync.deviceId }, 'c: the makers of the two versions');
  t.match(conflictLine(ec), `conflict on f.txt between the versions of devices ${a.sync.deviceId.slice(0, 7)} and ${b.sync.deviceId.slice(0, 7)} (not edited here): ${a.sync.deviceId.slice(0, 7)}'s, the one we had, is older and kept as f.sync-conflict-`, 'c: between whom');
  t.match(ec.copy, new RegExp(`-${a.sync.deviceId.slice(0, 7)}\\.txt$`), "c: the copy is named after a, the maker of the version it kept");
  // where a maker is not known (an older build's entries): the members holding each version
  t.match(conflictLine({ ...ec, oursBy: undefined }), `conflict on f.txt between 127.0.0.1:${a.node.port} and 127.0.0.1:${b.node.port} (not edited here): the older version, the one we had, is kept as f.sync-conflict-`, 'without makers: the holders');
  await converge([a, b, c], 3);
  for (const dir of [a.dir, b.dir, c.dir]) t.ok(filesIn(dir).some((n) => isConflictCopy(n)), `${dir}: a conflict copy`);
});

t.test('the share moved away and back: said when it is followed again', async (t) => {
  const da = tempDir(t);
  stillFile(da, 'top.txt');
  const a = await peer(t, da);
  const back: string[] = [];
  a.sync.on('back', (e) => back.push(e.dir));
  renameSync(da, `${da}.away`);
  t.teardown(() => rmSync(`${da}.away`, { recursive: true, force: true }));
  await a.sync.syncOnce();
  t.ok(a.warnings.some((w) => w.includes('is not the folder sync started on')), 'the loss is said');
  t.ok(a.infos.some((i) => i.message.includes('is not the folder sync started on') && i.code === 'SWARM_ERR_NOT_FOUND'), 'with a stable code');
  t.same(back, [], 'nothing said of a return yet');
  renameSync(`${da}.away`, da);
  await a.sync.syncOnce();
  await a.sync.syncOnce();
  t.same(back, [a.node.library.realRoot || da], 'the return is said once');
  t.equal(a.warnings.filter((w) => w.includes('is not the folder sync started on')).length, 1, 'and the loss only once');
});

t.test('many deleted at once: the counts that make them one summary', async (t) => {
  const names = (n: number, dir: string) => Array.from({ length: n }, (_, i) => `${dir}${i}.txt`);
  t.equal(manyDeleted(names(3, 'sub/'), 5), null, '3 of 5: each said');
  t.equal(manyDeleted(names(9, 'sub/'), 10), null, '9 of 10: each said (few)');
  t.same(manyDeleted(names(12, 'a/b/'), 20), { files: 12, under: 'a/b' }, 'more than half the share');
  t.equal(manyDeleted(names(60, 'sub/'), 1000), null, '60 of 1,000: each said');
  t.same(manyDeleted([...names(101, 'data/x/'), 'data/y.txt'], 10_000), { files: 102, under: 'data' }, 'more than 100: their common folder');
  t.same(manyDeleted([...names(101, 'data/'), 'top.txt'], 10_000), { files: 102, under: '' }, 'none in common: the top');
});

t.test('swarm sync: many files deleted here at once are one line on a terminal, each an event with --json', async (t) => {
  for (const json of [false, true]) {
    const dir = tempDir(t);
    for (let i = 0; i < 150; i++) stillFile(dir, `data/f${i}.txt`);
    stillFile(dir, 'kept.txt');
    const args = ['sync', dir, '--open', '--once', '--port', '0', '--no-tracker', '--threads', '0', ...(json ? ['--json'] : [])];
    // a first run remembers the files (exit 4: no other member), a second finds them deleted
    t.equal((await swarm(t, args).exit).code, 4, 'first run: no member found');
    rmSync(path.join(dir, 'data'), { recursive: true });
    mkdirSync(path.join(dir, 'data'));
    const run = swarm(t, args);
    t.equal((await run.exit).code, 4, 'second run: no member found');
    if (!json) {
      const lines = run.stderr().split('\n').filter((l) => l.startsWith('deleted here:'));
      t.same(lines, ["deleted here: 150 files under data/ (passed on: they stay in the other members' .swarm/trash for 30 days)"], 'one line');
    } else {
      const events = run.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      t.equal(events.filter((e) => e.event === 'deleted-here').length, 150, 'each file an event');
      t.same(
        events.filter((e) => e.event === 'deleted-here-many'),
        [{ event: 'deleted-here-many', files: 150, under: 'data' }],
        'and one summary event',
      );
      const kinds = events.map((e) => e.event);
      t.ok(kinds.indexOf('deleted-here-many') > kinds.lastIndexOf('deleted-here'), 'after them');
    }
  }
});

t.test('swarm sync: its tracker lost is said (a newcomer would find no member), and its return', async (t) => {
  const tr = new TrackerServer({ port: 0 });
  await tr.listen();
  const trPort = tr.port;
  let trOpen = true;
  t.teardown(async () => {
    if (trOpen) await tr.close();
  });
  const dir = tempDir(t);
  stillFile(dir, 'a.txt');
  const run = swarm(t, ['sync', dir, '--open', '--port', '0', '--tracker', `127.0.0.1:${trPort}`, '--threads', '0', '--json']);
  // registered before it said "syncing", or later with a "tracker" event
  await run.waitFor((o) => (o.event === 'syncing' && o.trackerConnected === true) || (o.event === 'tracker' && o.connected === true));
  await tr.close();
  trOpen = false;
  const lost = (await run.waitFor((o) => o.event === 'tracker' && o.connected === false)) as Record<string, unknown>;
  t.equal(lost.tracker, `127.0.0.1:${trPort}`, 'the tracker lost is said, with its address');
  const back = new TrackerServer({ port: trPort });
  await back.listen();
  t.teardown(() => back.close());
  await run.waitFor((o) => o.event === 'tracker' && o.connected === true);
  t.pass('and its return');
  run.kill('SIGINT');
  t.equal((await run.exit).code, 0, 'stopped by Ctrl-C');
});

t.test('a burst of deletions from a peer: the first lines, then one line for the rest', async (t) => {
  const said: string[] = [];
  const b = new BurstLines((l) => said.push(l), (n) => `... and ${n} more`, 10, 50);
  for (let i = 0; i < 160; i++) b.add(`deleted f${i}`);
  t.same(said.length, 10, 'the first 10 at once');
  b.flush();
  t.same(said.slice(10), ['... and 150 more'], 'then one line for the rest (before "in step")');
  b.add('deleted g');
  await new Promise((r) => setTimeout(r, 120));
  b.add('deleted h');
  t.same(said.slice(11), ['deleted g', 'deleted h'], 'a new burst after a quiet spell is said again line by line');
  b.flush();
  t.equal(said.length, 13, 'nothing held, nothing more said');
});
