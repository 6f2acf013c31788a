/**
 * The scanner and symlinked folders: a symlink inside the share that leads to a folder OUTSIDE it
 * is neither shared nor watched (Node's recursive fs.watch followed it; the scanner now watches
 * each folder it walked, and it never walks into a symlinked folder). A real subfolder is watched,
 * and a file written there is seen by its watch alone (no rescan interval).
 */
import t from 'tap';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Scanner, type ScanDiff } from '../lib/share/scanner.js';
import { tempDir } from './helpers/tmp.js';

t.test('a symlinked folder leading outside the share is neither shared nor watched', async (t) => {
  const share = tempDir(t);
  const outside = tempDir(t);
  mkdirSync(path.join(share, 'real'));
  writeFileSync(path.join(share, 'real', 'a.txt'), 'a');
  writeFileSync(path.join(outside, 'secret.txt'), 'not shared');
  symlinkSync(outside, path.join(share, 'out'));
  const skipped: string[] = [];
  const s = new Scanner(share, { intervalMs: 600_000, onSkip: (n, r) => skipped.push(`${n}: ${r}`) });
  t.teardown(() => s.stop());
  const diffs: ScanDiff[] = [];
  s.on('change', (d) => diffs.push(d));
  await s.rescan();
  s.start();
  t.same([...s.current.keys()], ['real/a.txt'], 'only the real file is shared');
  t.match(skipped.join('\n'), /out: symlink leads outside the share/);
  t.same(s.watchedDirs(), ['', 'real'], 'the top and the real folder are watched, not the link');
  // a write behind the link, then one in the real folder: only the second is news
  writeFileSync(path.join(outside, 'new-secret.txt'), 'still not shared');
  await new Promise((r) => setTimeout(r, 150));
  writeFileSync(path.join(share, 'real', 'b.txt'), 'b');
  const deadline = Date.now() + 5_000;
  while (!diffs.some((d) => d.added.includes('real/b.txt')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.ok(diffs.some((d) => d.added.includes('real/b.txt')), 'a file written in a real folder is seen by the watch');
  const named = diffs.flatMap((d) => [...d.added, ...d.changed, ...d.removed]);
  t.notOk(named.some((n) => n.startsWith('out')), `nothing behind the link was reported (${named.join(', ')})`);
  t.notOk([...s.current.keys()].some((n) => n.startsWith('out')), 'nor shared');
});

t.test('a folder created and removed: its files come and go, its watch too', async (t) => {
  const share = tempDir(t);
  const s = new Scanner(share, { intervalMs: 600_000 });
  t.teardown(() => s.stop());
  await s.rescan();
  s.start();
  mkdirSync(path.join(share, 'new', 'deeper'), { recursive: true });
  writeFileSync(path.join(share, 'new', 'deeper', 'x.txt'), 'x');
  const until = async (ok: () => boolean) => {
    const deadline = Date.now() + 5_000;
    while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return ok();
  };
  t.ok(await until(() => s.current.has('new/deeper/x.txt')), 'a file in a new folder is seen');
  t.ok(await until(() => s.watchedDirs().includes('new/deeper')), 'and the new folders are watched');
  const { rmSync } = await import('node:fs');
  rmSync(path.join(share, 'new'), { recursive: true });
  t.ok(await until(() => !s.current.has('new/deeper/x.txt')), 'removed with its folder');
  t.ok(await until(() => !s.watchedDirs().includes('new')), 'and its watch closed');
});
