/**
 * A version sync has not seen yet is never replaced unkept (hostile review 52). A user's edit, not yet in the index, is moved to a conflict-copy name that a fetch is
 * bringing "the same version" to (busy.get(copy) === local.cid), then the fetch replaces it: the
 * edit ends in no file and no trash.
 */
import t from 'tap';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { conflictName } from '../lib/sync/plan.js';
import { tempDir } from './helpers/tmp.js';
import { syncPeer as peer, stopPeer, connect, converge, editAgo as edit } from './helpers/sync-peers.js';

/** Every file under dir (the trash too), with its text. */
function everything(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(`${path.relative(dir, p)}: ${JSON.stringify(readFileSync(p, 'utf8').slice(0, 60))}`);
    }
  };
  walk(dir);
  return out.sort();
}

t.test('an unannounced edit moved to a copy name a fetch then replaces', async (t) => {
  const [dh, da] = [tempDir(t), tempDir(t)];
  edit(dh, 'f.txt', 'common\n', 120);
  const h = await peer(t, dh);
  let a = await peer(t, da);
  connect([h, a]);
  for (let i = 0; i < 6; i++) await converge([h, a], 1);
  t.equal(a.sync.index.get('f.txt')?.agreed, a.sync.index.get('f.txt')?.cid, 'agreed on common');
  await stopPeer(a);
  // H edits (V_h), its index takes it
  edit(dh, 'f.txt', 'V_h: edit made on H\n', 60);
  await converge([h], 1);
  const vh = h.sync.index.get('f.txt')!;
  t.equal(vh.maker, h.sync.deviceId);
  // A (offline) edits later (V_a wins), and puts H's version under the copy name H will use
  edit(da, 'f.txt', 'V_a: edit made on A\n', 30);
  const copy = conflictName('f.txt', vh.mtime, vh.maker!);
  edit(da, copy, 'V_h: edit made on H\n', 10);
  a = await peer(t, da);
  connect([h, a]);
  await converge([a], 1);
  // the user at H keeps typing: f.txt now holds U, which the index has not taken yet
  writeFileSync(path.join(dh, 'f.txt'), 'U: the user just saved this on H (precious)\n');
  const said: string[] = [];
  h.sync.on('conflict', (e) => said.push(JSON.stringify(e)));
  await h.sync.syncOnce();
  await new Promise((r) => setTimeout(r, 500));
  const all = everything(dh);
  t.comment(said.join('\n'));
  t.comment(all.join('\n'));
  t.ok(all.some((l) => l.includes('precious')), "the user's edit U is somewhere (a file or the trash)");
  t.ok(existsSync(path.join(dh, copy)));
});

t.test('(older) a file made here, not yet scanned, at a name a peer adds', async (t) => {
  const [dh, da] = [tempDir(t), tempDir(t)];
  edit(dh, 'x.txt', 'x\n', 120);
  edit(da, 'new.txt', 'from A\n', 30);
  const h = await peer(t, dh);
  const a = await peer(t, da);
  connect([h, a]);
  await converge([a], 1);
  writeFileSync(path.join(dh, 'new.txt'), 'made on H by the user (precious)\n');
  await h.sync.syncOnce();
  const all = everything(dh);
  t.comment(all.join('\n'));
  t.ok(all.some((l) => l.includes('precious')), "the user's new file is somewhere");
});
